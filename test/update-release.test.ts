import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { SystemClock } from '../agent/core/clock.js';
import { ReleaseInstaller, UpdateRefused, type UpdateArgs } from '../agent/update/installer.js';
import { ReleaseLayout } from '../agent/update/layout.js';
import { MANIFEST_FILE, parseManifest, SIGNATURE_FILE, treeProblems, verifyManifestSig } from '../agent/update/manifest.js';
import { runProgram } from '../agent/update/run-program.js';
import { deriveRelease, opKey, realRelease, sha256, tamper } from './helpers/release-rig.js';
import { tempDir } from './helpers/tmp.js';

// Issue 13 item 1: `npm run release` makes one signed, self-contained tarball, and the agent's
// installer takes it only when its sha256, its manifest's signature and every file agree; a
// refused release leaves releases/ as it was.

// Packing ~4,000 files and unpacking them again several times: minutes on a shared 2-core box.
t.setTimeout(10 * 60_000);
const run = promisify(execFile);
const op = opKey(t, 'op');
const other = opKey(t, 'op');
const A = await realRelease(t, op, '9.9.0-a');

t.test('the release: self-contained, signed, runs from where it is unpacked', async (t) => {
  const names = (await run('tar', ['-tzf', A.file], { maxBuffer: 64 << 20 })).stdout.split('\n');
  t.ok(names.includes('./dist/agent/main.js'), 'the agent');
  t.ok(names.includes('./dist/scripts/signagectl.js'), 'the operator tools the Pi runs');
  t.ok(names.includes('./provisioning/update-gate.sh') && names.includes('./systemd/signage-agent.service'), 'the gate and the units');
  t.ok(names.some((n) => n.startsWith('./node_modules/sqlite3/') && n.endsWith('.node')), 'sqlite3 with its native part');
  t.notOk(names.some((n) => n.startsWith('./dist/fleet/')), 'no fleet service: the Pi never loads it');
  t.notOk(names.some((n) => n.startsWith('./dist/test/')), 'no tests');
  for (const dev of ['tap', 'typescript', 'pg', 'fast-check', 'playwright-core']) t.notOk(names.some((n) => n.startsWith(`./node_modules/${dev}/`)), `no devDependency ${dev}`);
  t.notOk(names.some((n) => n.startsWith('./dist/') && n.endsWith('.js.map')), 'no source maps of ours');

  const tree = tempDir(t, 'unpacked-');
  await run('tar', ['-xzf', A.file, '-C', tree]);
  const bytes = readFileSync(path.join(tree, MANIFEST_FILE));
  const m = parseManifest(bytes);
  t.equal(m.version, '9.9.0-a');
  t.equal(m.arch, process.arch, 'the arch of the native parts is recorded');
  t.ok(Object.keys(m.files).length > 100);
  t.same(await treeProblems(tree, m), [], 'every file as the manifest says');
  t.equal(readFileSync(path.join(tree, SIGNATURE_FILE), 'utf8').trim(), A.manifestSig, 'manifest.sig is the printed manifestSig');
  t.same(verifyManifestSig(bytes, A.manifestSig, op.lookup), { ok: true, keyId: 'op' });
  t.match(verifyManifestSig(bytes, A.manifestSig, other.lookup), { ok: false, reason: /bad signature/ }, 'another key with the same id does not verify it');
  t.equal(sha256(A.file), A.sha256);
  // It runs alone: nothing above the unpacked tree (the repo's node_modules) is reachable from /tmp.
  const v = await run(process.execPath, [path.join(tree, 'dist/agent/main.js'), '--version']);
  t.equal(v.stdout.trim(), '9.9.0-a', 'the agent reports the release version');
  const s = await run(process.execPath, ['-e', "import('sqlite3').then((m) => { const db = new m.default.Database(':memory:'); db.get('select 41+1 as x', (e, r) => console.log(r.x)); })"], { cwd: tree });
  t.equal(s.stdout.trim(), '42', 'the bundled sqlite3 loads and queries');
});

t.test('the installer: a good release lands in releases/{version}; refusals leave nothing', async (t) => {
  const dir = tempDir(t, 'install-');
  const releases = path.join(dir, 'releases');
  mkdirSync(releases);
  const layout = new ReleaseLayout(releases);
  const inst = new ReleaseInstaller({ layout, cacheDir: path.join(dir, 'cache'), clock: new SystemClock(), sources: { fileRoots: [path.dirname(A.file), dir, '/tmp'], allowHosts: [] }, run: runProgram(60_000) });
  const args = (r: { file: string; sha256: string; version: string; manifestSig: string }): UpdateArgs => ({ url: `file://${r.file}`, sha256: r.sha256, version: r.version, manifestSig: r.manifestSig });
  const refused = async (what: string, a: UpdateArgs, keys = op.lookup): Promise<UpdateRefused> => {
    try {
      const tar = await inst.download(a, new AbortController().signal);
      await inst.unpack(tar, a, keys);
    } catch (e) {
      t.type(e, UpdateRefused, what);
      t.same(readdirSync(releases), [], `${what}: releases/ untouched, no staging left`);
      return e as UpdateRefused;
    }
    t.fail(`${what}: taken`);
    throw new Error('taken');
  };

  const wrongSha = await refused('a tarball whose sha256 is not the one signed', { ...args(A), sha256: 'a'.repeat(64) });
  t.equal(wrongSha.stage, 'download');
  const badSig = await refused('a manifest signed by an unknown key', args(A), other.lookup);
  t.equal(badSig.stage, 'verify');
  t.match(badSig.message, /bad signature/);
  const notSig = await refused('a manifestSig that is not a signature', { ...args(A), manifestSig: 'op:AAAA' });
  t.match(notSig.message, /KEYID:BASE64/);
  const tamperedFile = await tamper(t, A.file, 'dist/agent/agent.js', '\nconsole.log("owned");\n');
  const tampered = await refused('a tampered file under a valid manifest signature', { ...args(A), url: `file://${tamperedFile}`, sha256: sha256(tamperedFile) });
  t.match(tampered.message, /dist\/agent\/agent\.js: content differs/);
  const otherVersion = await refused('a manifest of another version', { ...args(A), version: '9.9.0-z' });
  t.match(otherVersion.message, /manifest says version 9\.9\.0-a/);
  const forged = await deriveRelease(t, A.file, other, '9.9.1-evil');
  await refused('a release re-signed by another key', args(forged));

  const tar = await inst.download(args(A), new AbortController().signal);
  await inst.unpack(tar, args(A), op.lookup);
  t.same(readdirSync(releases), ['9.9.0-a'], 'the good release, and nothing else');
  const m = parseManifest(readFileSync(path.join(releases, '9.9.0-a', MANIFEST_FILE)));
  t.same(await treeProblems(path.join(releases, '9.9.0-a'), m), []);
  t.notOk(existsSync(path.join(releases, 'current')), 'unpacking switches nothing');
});
