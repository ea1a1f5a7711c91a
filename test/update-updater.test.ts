import { mkdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { SystemClock } from '../agent/core/clock.js';
import { silentLogger } from '../agent/core/log.js';
import type { Events } from '../agent/events/recorder.js';
import { GateFiles } from '../agent/update/gate-files.js';
import { ReleaseLayout } from '../agent/update/layout.js';
import { runProgram } from '../agent/update/run-program.js';
import { Updater, type SpotGap, type UpdaterCtx } from '../agent/update/updater.js';
import { opKey, tinyRelease } from './helpers/release-rig.js';
import { tempDir } from './helpers/tmp.js';
import { waitFor } from './helpers/wait.js';

// The updater against real files and tar, with the engine's answer (gap) and the restart as
// recorders: the switch waits while a spot runs or the next is near; the command is refused
// without keys; a rolled-back note becomes update-failed; a healthy run prunes to two releases.

// Spawns, tar and fsync on a shared 2-core box: more than the suite's default 120 s under load.
t.setTimeout(5 * 60_000);
const run = promisify(execFile);
const op = opKey(t, 'op');
const A = await tinyRelease(t, op, 'A');
const B = await tinyRelease(t, op, 'B');

interface Rig {
  updater: Updater;
  releases: string;
  files: GateFiles;
  restarts: string[];
  events: Array<{ type: string; detail: unknown }>;
  gap: SpotGap;
  calls: { gap: number };
  healthy: { ok: boolean };
}

async function rig(t: Test, o: Partial<UpdaterCtx> = {}, version = 'A'): Promise<Rig> {
  const root = tempDir(t, 'updater-');
  const releases = path.join(root, 'releases');
  mkdirSync(path.join(releases, 'A'), { recursive: true });
  await run('tar', ['-xzf', A.file, '-C', path.join(releases, 'A')]);
  await new ReleaseLayout(releases).relink('current', 'A');
  const r = { restarts: [] as string[], events: [] as Array<{ type: string; detail: unknown }>, gap: { spotUnderWay: false } as SpotGap, calls: { gap: 0 }, healthy: { ok: false } };
  const updater = new Updater({
    releasesDir: releases,
    stateDir: path.join(root, 'state'),
    version,
    clock: new SystemClock(),
    log: silentLogger(),
    events: { record: async (type: string, detail: unknown) => void r.events.push({ type, detail }) } as unknown as Events,
    settings: { deadlineSec: 600, healthyAfterSec: 1, maxStarts: 3, minGapSec: 5 },
    sources: { fileRoots: ['/tmp'], allowHosts: [] },
    run: runProgram(60_000),
    keys: () => op.lookup,
    gap: () => (r.calls.gap++, r.gap),
    healthy: () => r.healthy.ok,
    requestRestart: (why) => void r.restarts.push(why),
    ...o,
  });
  t.teardown(() => updater.stop());
  return { updater, releases, files: new GateFiles(path.join(root, 'state')), ...r };
}

const args = { url: `file://${B.file}`, sha256: B.sha256, version: 'B', manifestSig: B.manifestSig };

t.test('the switch waits for a gap: not while a spot runs, not when the next is nearer than minGapSec', async (t) => {
  const r = await rig(t);
  r.gap.spotUnderWay = true;
  t.match(r.updater.accept(args), { accepted: true, version: 'B', from: 'A' });
  await waitFor('the updater asks for a gap', () => r.calls.gap >= 2, 60_000);
  t.equal(r.updater.info().update.state, 'waiting-for-gap');
  t.equal(readlinkSync(path.join(r.releases, 'current')), 'A', 'not switched while a spot runs');
  r.gap.spotUnderWay = false;
  r.gap.nextSpotInMs = 2000;
  const asked = r.calls.gap;
  await waitFor('asked again', () => r.calls.gap >= asked + 2, 10_000);
  t.equal(readlinkSync(path.join(r.releases, 'current')), 'A', 'not switched 2 s before a spot (minGapSec 5)');
  t.same(r.restarts, []);
  r.gap.nextSpotInMs = 60_000;
  await waitFor('restart requested', () => r.restarts.length === 1, 10_000);
  t.equal(readlinkSync(path.join(r.releases, 'current')), 'B');
  t.equal(readlinkSync(path.join(r.releases, 'previous')), 'A');
  t.match(await r.files.pending(), { to: 'B', from: 'A', maxStarts: 3 });
  t.same(r.restarts, ['update to B']);
  t.same(r.events, [], 'no failure recorded');
});

t.test('refused at once: no keys, the running version, a second update while one runs, bad args', async (t) => {
  const noKeys = await rig(t, { keys: () => undefined });
  t.throws(() => noKeys.updater.accept(args), /updates need security keys/);
  const r = await rig(t);
  t.throws(() => r.updater.accept({ ...args, version: 'A' }), /already running A/);
  t.throws(() => r.updater.accept({ ...args, version: '../x' }), /args\.version/);
  t.throws(() => r.updater.accept({ ...args, sha256: 'nope' }), /args\.sha256/);
  t.throws(() => r.updater.accept({ ...args, url: 'ftp://x' }), /args\.url/);
  r.gap.spotUnderWay = true;
  r.updater.accept(args);
  t.throws(() => r.updater.accept(args), /an update to B is under way/);
  await waitFor('downloaded and waiting', () => r.updater.info().update.state === 'waiting-for-gap', 60_000);
});

t.test('the release that is back reports the rollback; a healthy new release clears pending and prunes to two', async (t) => {
  const back = await rig(t);
  mkdirSync(back.files.dir, { recursive: true });
  await run('sh', ['-c', `printf 'from=B\\nto=A\\nreason=B crashed\\nat=1800000000\\n' > ${back.files.dir}/rolled-back; rm -f ${back.files.dir}/pending`]);
  await back.updater.start();
  t.match(back.events, [{ type: 'update-failed', detail: { version: 'B', runningVersion: 'A', stage: 'health', reason: 'B crashed', rolledBackAt: '2027-01-15T08:00:00.000Z' } }]);
  t.equal(await back.files.rolledBack(), undefined, 'reported once');

  const b = await rig(t, {}, 'B');
  for (const v of ['B', 'old-1']) {
    mkdirSync(path.join(b.releases, v));
    await run('tar', ['-xzf', B.file, '-C', path.join(b.releases, v)]);
  }
  const layout = new ReleaseLayout(b.releases);
  await layout.relink('previous', 'A');
  await layout.relink('current', 'B');
  await b.files.writePending({ to: 'B', from: 'A', deadline: Math.floor(Date.now() / 1000) + 600, maxStarts: 3 });
  await b.updater.start();
  t.equal(b.updater.info().update.state, 'proving');
  b.healthy.ok = true;
  await waitFor('healthy', () => b.updater.info().update.state === 'healthy', 10_000);
  t.equal(await b.files.healthyVersion(), 'B');
  t.equal(await b.files.pending(), undefined);
  t.match(b.events, [{ type: 'updated', detail: { from: 'A', to: 'B' } }]);
  await waitFor('pruned', async () => !(await layout.has('old-1')), 10_000);
  t.ok((await layout.has('A')) && (await layout.has('B')), 'current and previous kept');
});
