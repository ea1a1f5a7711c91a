import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { MEDIA_EXTENSIONS } from '../core/media-formats.js';
import type { EpochMs } from '../core/types.js';
import type { Logger } from '../core/log.js';
import { ATOMIC_TEMP_SUFFIX, writeFileAtomic } from '../fsx/atomic.js';

// On disk, the cache directory holds:
//   <sha256>[.ext]   verified files (the name is the content's hash; .ext from the URL helps mpv probe)
//   <sha256>.part    a download in progress, kept between attempts and restarts for HTTP Range resume
//   index.json       per file: last use, the length mpv probed at verification (null: mpv found
//                    none, e.g. a still), the length learned from plays, the source URL (to fetch
//                    it again after a failed re-hash). A hint: the files themselves are the truth.

export const INDEX_FILE = 'index.json';
export const FINAL_RE = /^([0-9a-f]{64})(\.[a-z0-9]{1,5})?$/;
const PART_RE = /^([0-9a-f]{64})\.part$/;
/** A partial download nobody resumed for this long is abandoned. */
const PART_MAX_AGE_MS = 7 * 86400_000;

export interface CachedFile {
  sha256: string;
  name: string;
  size: number;
  lastUsed: EpochMs;
  /** Learned from completed plays (kept only near the probed length, see MediaCache.setDuration). */
  durationMs?: number;
  /** Probed by mpv when verified; null: probed, mpv reported no length; absent: not probed yet. */
  probedMs?: number | null;
  url?: string;
}

interface IndexDoc {
  version: 1;
  files: Record<string, { name: string; size: number; lastUsed: number; durationMs?: number; probedMs?: number | null; url?: string }>;
}

export interface ScanResult {
  files: Map<string, CachedFile>;
  /** sha256 → bytes already downloaded. */
  parts: Map<string, number>;
  /** Names deleted during the scan (temp leftovers, stale parts, duplicates, size mismatches). */
  removed: string[];
}

/**
 * Rebuilds the cache state from the directory: every `<sha256>[.ext]` file is taken, with
 * its last use from the index (or its mtime when the index lost it). A file whose size
 * differs from the index's record is deleted rather than trusted. Content is not checked
 * here: MediaCache re-hashes each file in the background before handing it out.
 */
export async function scanCacheDir(dir: string, now: EpochMs, log: Logger): Promise<ScanResult> {
  await mkdir(dir, { recursive: true });
  const index = await readIndex(dir, log);
  const files = new Map<string, CachedFile>();
  const parts = new Map<string, number>();
  const removed: string[] = [];
  const remove = async (name: string, why: string): Promise<void> => {
    await unlink(path.join(dir, name)).catch(() => undefined);
    removed.push(name);
    log.info({ file: name, why }, 'media cache: removed');
  };
  for (const name of (await readdir(dir)).sort()) {
    if (name === INDEX_FILE) continue;
    if (name.endsWith(ATOMIC_TEMP_SUFFIX)) {
      await remove(name, 'temp leftover');
      continue;
    }
    const part = PART_RE.exec(name);
    const fin = FINAL_RE.exec(name);
    if (!part && !fin) continue;
    const st = await stat(path.join(dir, name)).catch(() => undefined);
    if (!st?.isFile()) continue;
    if (part?.[1]) {
      if (now - st.mtimeMs > PART_MAX_AGE_MS) await remove(name, 'abandoned partial download');
      else parts.set(part[1], st.size);
      continue;
    }
    const sha = fin![1]!;
    const known = index.files[sha];
    if (files.has(sha)) {
      await remove(name, 'duplicate of the same content');
    } else if (known && known.name === name && known.size !== st.size) {
      await remove(name, `size ${st.size} differs from the recorded ${known.size}`);
    } else {
      const f: CachedFile = { sha256: sha, name, size: st.size, lastUsed: known?.lastUsed ?? st.mtimeMs };
      if (known?.durationMs !== undefined) f.durationMs = known.durationMs;
      if (known?.probedMs !== undefined && known.name === name) f.probedMs = known.probedMs;
      if (typeof known?.url === 'string') f.url = known.url;
      files.set(sha, f);
    }
  }
  // A part whose file is already verified is useless.
  for (const sha of parts.keys()) {
    if (files.has(sha)) {
      parts.delete(sha);
      await remove(`${sha}.part`, 'already verified');
    }
  }
  return { files, parts, removed };
}

export async function writeIndex(dir: string, files: Iterable<CachedFile>): Promise<void> {
  const doc: IndexDoc = { version: 1, files: {} };
  for (const f of files) {
    doc.files[f.sha256] = {
      name: f.name,
      size: f.size,
      lastUsed: f.lastUsed,
      ...(f.durationMs !== undefined ? { durationMs: f.durationMs } : {}),
      ...(f.probedMs !== undefined ? { probedMs: f.probedMs } : {}),
      ...(f.url !== undefined ? { url: f.url } : {}),
    };
  }
  await writeFileAtomic(path.join(dir, INDEX_FILE), JSON.stringify(doc));
}

async function readIndex(dir: string, log: Logger): Promise<IndexDoc> {
  let text: string;
  try {
    text = await readFile(path.join(dir, INDEX_FILE), 'utf8');
  } catch {
    return { version: 1, files: {} };
  }
  try {
    const doc = JSON.parse(text) as Partial<IndexDoc>;
    if (doc.version === 1 && doc.files && typeof doc.files === 'object') return doc as IndexDoc;
  } catch {
    // fall through: a broken index only costs the LRU order
  }
  log.warn({ dir }, 'media cache: index.json unreadable, rebuilt from the files');
  return { version: 1, files: {} };
}

/** `.mp4` from `https://x/clip.MP4?x=1`, or '' when the URL has no plain short extension. */
export function extensionOf(url: string): string {
  try {
    const ext = path.posix.extname(new URL(url).pathname).toLowerCase();
    // Only media extensions: `.m3u`, `.edl` or `.txt` would be a hint to mpv to read a playlist.
    return MEDIA_EXTENSIONS.has(ext) ? ext : '';
  } catch {
    return '';
  }
}

/** Re-hashes every verified file in `dir`; a problem per file whose content does not match its name. */
export async function checkFiles(dir: string): Promise<{ problems: string[]; names: string[] }> {
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (e) {
    return { problems: [`cannot read ${dir}: ${(e as Error).message}`], names: [] };
  }
  const problems: string[] = [];
  for (const name of names) {
    const sha = FINAL_RE.exec(name)?.[1];
    if (!sha) continue;
    try {
      const got = await sha256Of(path.join(dir, name));
      if (got !== sha) problems.push(`${name}: content hashes to ${got}`);
    } catch (e) {
      problems.push(`${name}: unreadable: ${(e as Error).message}`);
    }
  }
  return { problems, names };
}

/** sha256 (hex) of a file, streamed in 256 KB reads: the event loop stays free between chunks. */
export async function sha256Of(file: string, signal?: AbortSignal): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file, { highWaterMark: 256 * 1024, ...(signal ? { signal } : {}) }) as AsyncIterable<Buffer>) h.update(c);
  return h.digest('hex');
}
