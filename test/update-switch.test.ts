import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { GateFiles } from '../agent/update/gate-files.js';
import { ReleaseLayout, type SwitchStep } from '../agent/update/layout.js';
import { opKey, REPO, tinyRelease } from './helpers/release-rig.js';
import { tempDir } from './helpers/tmp.js';
import { waitFor } from './helpers/wait.js';

// Issue 13 item 2, "power cut at every step of the switch": the updater runs in its own process
// and is killed with SIGKILL at each step; then the box "boots": the health gate runs as the
// unit's ExecStartPre would, and whatever `current` names must be a complete release, A or B,
// that runs. This machine has no running systemd (a container): the unit's logic is exercised
// by running the gate script and the release's main.js against a temp root, as the unit would.

// Spawns, tar and fsync on a shared 2-core box: more than the suite's default 120 s under load.
t.setTimeout(5 * 60_000);
const run = promisify(execFile);
const GATE = path.join(REPO, 'provisioning', 'update-gate.sh');
const CHILD = path.join(REPO, 'dist', 'test', 'helpers', 'update-switch-child.js');
const op = opKey(t, 'op');
const A = await tinyRelease(t, op, 'A');
const B = await tinyRelease(t, op, 'B');

interface Box {
  releases: string;
  state: string;
  layout: ReleaseLayout;
  files: GateFiles;
}

/** A box with release A installed and current, as install.sh leaves it. */
async function boxWithA(t: Test): Promise<Box> {
  const root = tempDir(t, 'box-');
  const releases = path.join(root, 'opt/signage-agent/releases');
  const state = path.join(root, 'var/lib/signage-agent/update');
  mkdirSync(path.join(releases, 'A'), { recursive: true });
  mkdirSync(state, { recursive: true });
  await run('tar', ['-xzf', A.file, '-C', path.join(releases, 'A')]);
  const layout = new ReleaseLayout(releases);
  await layout.relink('current', 'A');
  return { releases, state, layout, files: new GateFiles(state) };
}

async function gate(box: Box, mode: 'start' | 'check', now?: number, dry = false): Promise<string> {
  const args = [GATE, mode, '--releases', box.releases, '--state', box.state, ...(now !== undefined ? ['--now', String(now)] : []), ...(dry ? ['--dry-run'] : [])];
  return (await run('sh', args)).stdout;
}

/** What the unit would start: node on releases/current/dist/agent/main.js; its output is the version. */
async function boot(box: Box): Promise<string> {
  return (await run(process.execPath, [path.join(box.releases, 'current', 'dist', 'agent', 'main.js')])).stdout.trim();
}

const STEPS: SwitchStep[] = ['release-in-place', 'pending-written', 'previous-linked', 'current-linked'];

for (const step of STEPS) {
  t.test(`kill -9 at ${step}: the box comes back on A or B, never neither`, async (t) => {
    const box = await boxWithA(t);
    const child = spawn(process.execPath, [CHILD, box.releases, box.state, `file://${B.file}`, B.sha256, 'B', B.manifestSig, op.entry, step], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise((r) => child.once('exit', r));
    t.teardown(() => void child.kill('SIGKILL'));
    await waitFor(`the updater at ${step}`, () => out.includes(`at ${step}\n`), 60_000);
    child.kill('SIGKILL');
    await exited;
    t.notMatch(out, /update-failed/, 'nothing failed before the kill');

    const said = await gate(box, 'start');
    const cur = readlinkSync(path.join(box.releases, 'current'));
    t.ok(cur === 'A' || cur === 'B', `current names A or B (${cur})`);
    t.ok(existsSync(path.join(box.releases, cur, 'package.json')), 'a complete release');
    t.equal(await boot(box), cur, 'and it runs');
    const pending = await box.files.pending();
    if (step === 'current-linked') {
      t.equal(cur, 'B', 'the switch was complete: B runs, on probation');
      t.match(pending, { to: 'B', from: 'A' }, 'B still has to prove itself');
      t.equal(readlinkSync(path.join(box.releases, 'previous')), 'A');
      // B never proves itself (nothing here writes `healthy`): restarts until the crash-loop bound.
      for (let i = 0; i < 3; i++) await gate(box, 'start');
      t.equal(readlinkSync(path.join(box.releases, 'current')), 'A', 'rolled back after maxStarts starts without proof');
      t.match(await box.files.rolledBack(), { from: 'B', to: 'A', reason: /started 4 times without proving itself healthy/ });
      t.equal(await boot(box), 'A');
    } else {
      t.equal(cur, 'A', 'the switch had not happened: still A');
      if (step === 'release-in-place') {
        t.equal(pending, undefined, 'no update pending');
        t.equal(said, '', 'the gate had nothing to do');
      } else {
        t.equal(pending, undefined, 'the unfinished update is cleared');
        t.match(await box.files.rolledBack(), { from: 'B', to: 'A', reason: /did not complete/ }, 'and A will report update-failed');
      }
    }
    t.notOk(existsSync(path.join(box.state, 'starts')) && cur === 'A' && step !== 'current-linked', 'no start count left behind on A');
  });
}

t.test('the gate: a healthy B is kept; a B past its deadline is rolled back; check restarts only then', async (t) => {
  const box = await boxWithA(t);
  mkdirSync(path.join(box.releases, 'B'));
  await run('tar', ['-xzf', B.file, '-C', path.join(box.releases, 'B')]);
  const now = 1_800_000_000;
  await box.files.writePending({ to: 'B', from: 'A', deadline: now + 600, maxStarts: 3 });
  await box.layout.relink('previous', 'A');
  await box.layout.relink('current', 'B');

  t.equal(await gate(box, 'check', now + 10, true), '', 'check: before the deadline, nothing');
  await gate(box, 'start', now + 10);
  t.equal(readlinkSync(path.join(box.releases, 'current')), 'B', 'one start before the deadline: B stays');
  t.equal(readFileSync(path.join(box.state, 'starts'), 'utf8').trim(), '1');
  t.match(await gate(box, 'check', now + 601, true), /would run: systemctl restart signage-agent\.service/, 'check past the deadline: restart, for the start gate to roll back');
  t.equal(readlinkSync(path.join(box.releases, 'current')), 'B', 'check itself touches no link');
  await gate(box, 'start', now + 601);
  t.equal(readlinkSync(path.join(box.releases, 'current')), 'A', 'start past the deadline: back to A');
  t.match(await box.files.rolledBack(), { from: 'B', to: 'A', reason: /did not prove itself healthy by the deadline/ });
  t.equal(await box.files.pending(), undefined);

  // Once more, and this time B proves itself.
  await box.files.remove('rolled-back');
  await box.files.writePending({ to: 'B', from: 'A', deadline: now + 600, maxStarts: 3 });
  await box.layout.relink('current', 'B');
  await box.files.markHealthy('B');
  t.equal(await box.files.pending(), undefined, 'the healthy release clears its own pending update');
  await box.files.writePending({ to: 'B', from: 'A', deadline: now + 600, maxStarts: 3 });
  await gate(box, 'start', now + 10_000);
  t.equal(readlinkSync(path.join(box.releases, 'current')), 'B', 'healthy: kept even past the deadline');
  t.equal(await box.files.pending(), undefined, 'the gate clears it too');
  t.equal(await gate(box, 'check', now + 10_000, true), '', 'nothing pending: check does nothing');
});

t.test('the gate repairs a current that names no release', async (t) => {
  const box = await boxWithA(t);
  await box.layout.relink('previous', 'A');
  await box.layout.relink('current', 'gone');
  t.match(await gate(box, 'start'), /current named no release \(gone\); now A/);
  t.equal(await boot(box), 'A');
});

t.test('prune keeps what current and previous name', async (t) => {
  const box = await boxWithA(t);
  for (const v of ['B', 'C', '.incoming-D-1']) {
    mkdirSync(path.join(box.releases, v));
    writeFileSync(path.join(box.releases, v, 'package.json'), '{}');
  }
  await box.layout.relink('previous', 'A');
  await box.layout.relink('current', 'B');
  t.same((await box.layout.prune()).sort(), ['.incoming-D-1', 'C']);
  t.ok(existsSync(path.join(box.releases, 'A')) && existsSync(path.join(box.releases, 'B')), 'two releases kept');
});
