import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// The page's files (fleet/web/: plain HTML, CSS and ES modules, no build step), read once at start
// and served from memory: a fixed list, so no request path ever reaches the file system.

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** fleet/web beside fleet/http in a checkout; dist/fleet/web when deployed; the checkout's from dist/. */
export function defaultWebDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.join(here, '../web'), path.join(here, '../../../fleet/web')];
  return candidates.find((d) => existsSync(path.join(d, 'index.html'))) ?? candidates[0]!;
}

export interface StaticFile {
  type: string;
  body: Buffer;
}

/** URL path → file, for every file of the web dir: `/` is index.html, the rest under `/static/`. */
export function loadWeb(dir: string, files: readonly string[]): Map<string, StaticFile> {
  const out = new Map<string, StaticFile>();
  for (const f of files) {
    const type = TYPES[path.extname(f)];
    if (!type) throw new Error(`fleet/web/${f}: no content type for it`);
    out.set(`/static/${f}`, { type, body: readFileSync(path.join(dir, f)) });
  }
  return out;
}

export const WEB_FILES = ['index.html', 'screen.html', 'report.html', 'noc.css', 'common.js', 'grid.js', 'screen.js', 'report.js'] as const;
