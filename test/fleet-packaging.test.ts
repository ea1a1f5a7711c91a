// The package split of docs/fleet.md: the Pi installs the root package with `--omit=dev`, so a
// package that only fleet/ loads must not be a root `dependency` (a root devDependency, so that
// `npm test` has it); fleet/package.json, the fleet service's deploy manifest, lists every package
// fleet/ loads (and what it loads through agent/protocol/), at the root's version range.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { scanTree } from './helpers/import-scan.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
type Manifest = { dependencies?: Record<string, string>; devDependencies?: Record<string, string>; bin?: Record<string, string> };
const read = (f: string): Manifest => JSON.parse(readFileSync(path.join(repo, f), 'utf8')) as Manifest;
const root = read('package.json');
const fleet = read('fleet/package.json');

/** Packages (not node: builtins, not repository files) that files under `dirs` load at run time. */
function packagesOf(dirs: string[], only?: (file: string) => boolean): Set<string> {
  const out = new Set<string>();
  for (const src of scanTree(repo, dirs)) {
    if (only && !only(src.file)) continue;
    for (const i of src.imports) {
      if (i.typeOnly || i.spec.startsWith('.') || i.target.startsWith('node:')) continue;
      out.add(i.target.startsWith('@') ? i.target.split('/').slice(0, 2).join('/') : i.target.split('/')[0]!);
    }
  }
  return out;
}

const fleetPkgs = packagesOf(['fleet', 'agent'], (f) => f.startsWith('fleet/') || f.startsWith('agent/protocol/'));
const agentPkgs = packagesOf(['agent']);

t.test('fleet/ loads packages, and the fleet manifest lists each at the root range', async (t) => {
  t.ok(fleetPkgs.has('mqtt') && fleetPkgs.has('sqlite3'), `fleet/ was read: ${[...fleetPkgs].join(', ')}`);
  for (const p of fleetPkgs) {
    const range = root.dependencies?.[p] ?? root.devDependencies?.[p];
    t.ok(range, `${p} is in the root package.json (dependencies or devDependencies)`);
    t.equal(fleet.dependencies?.[p], range, `fleet/package.json lists ${p} at the root's range`);
  }
  const extra = Object.keys(fleet.dependencies ?? {}).filter((p) => !fleetPkgs.has(p));
  t.same(extra, [], 'fleet/package.json lists nothing fleet/ does not load');
});

t.test('a package only fleet/ loads is no root dependency, so the Pi never installs it', async (t) => {
  const fleetOnly = [...fleetPkgs].filter((p) => !agentPkgs.has(p));
  for (const p of fleetOnly) {
    t.notOk(root.dependencies?.[p], `${p}: not in root dependencies (npm ci --omit=dev on the Pi)`);
    t.ok(root.devDependencies?.[p], `${p}: a root devDependency (npm test)`);
  }
  t.pass(`fleet-only packages today: ${fleetOnly.length === 0 ? 'none' : fleetOnly.join(', ')}`);
});

t.test('the second bin', async (t) => {
  t.equal(root.bin?.['signage-fleet'], 'dist/fleet/main.js');
  t.equal(fleet.bin?.['signage-fleet'], 'dist/fleet/main.js');
});
