import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { signFor } from '../scripts/signagectl/sign.js';
import { ctl } from './helpers/ctl.js';
import { e2eClips, windowFromNow, type PlayMsg } from './helpers/e2e.js';
import { Observer } from './helpers/link-rig.js';
import { startBroker, type Broker } from './helpers/mosquitto.js';
import { deriveRelease, opKey, realRelease } from './helpers/release-rig.js';
import { tempDir } from './helpers/tmp.js';
import { SupervisedBox } from './helpers/update-rig.js';
import { waitFor } from './helpers/wait.js';

// Issue 13 items 2-4 with real agents: release A (npm run release of this checkout) installed in
// the release layout of a temp root and run as the unit runs it (gate, then releases/current;
// this machine has no running systemd, see update-rig.ts), a real mosquitto, headless mpv
// playing a signed campaign, and `signagectl update` as the operator runs it.

t.setTimeout(15 * 60_000);
const op = opKey(t, 'op');
const A = await realRelease(t, op, '9.9.0-a');
const B = await deriveRelease(t, A.file, op, '9.9.1-b');
const CRASH = await deriveRelease(t, A.file, op, '9.9.1-crash', (tree) => {
  const main = path.join(tree, 'dist', 'agent', 'main.js');
  const text = readFileSync(main, 'utf8');
  // After the shebang and imports would be nicer; at the top is what a broken build looks like.
  writeFileSync(main, text.replace(/^(#!.*\n)?/, (m) => `${m}throw new Error('release 9.9.1-crash fails at start');\n`));
});
// Where the operator puts the files for the screens (a file:// URL inside their media.fileRoots).
const shelf = tempDir(t, 'shelf-');
for (const r of [B, CRASH]) copyFileSync(r.file, path.join(shelf, path.basename(r.file)));
const clips = await e2eClips();

const UPDATE = { deadlineSec: 120, healthyAfterSec: 3, maxStarts: 3, minGapSec: 3 };

async function box(t: Test, broker: Broker, id: string, groups: string[]): Promise<SupervisedBox> {
  const b = new SupervisedBox(t, id, broker.url, { groups, security: { assignmentKeys: [op.entry] }, update: UPDATE });
  await b.install(A.file, A.version);
  return b;
}

/** A signed campaign: a 2 s spot every 8 s for four minutes, on a 3 s loop. */
async function assign(obs: Observer, id: string): Promise<void> {
  const w = windowFromNow(3000, 240);
  const doc = {
    version: Math.floor(Date.now() / 1000),
    campaigns: [{ id: 'spot', media: { ...clips.spot, durationMs: 2000 }, timesPerDay: 30, windows: [w.window] }],
    loop: [clips.loop],
  };
  await obs.publish(`signage/device/${id}/assignment`, signFor(doc, { key: op.key, keyId: op.keyId }, `device/${id}`, Date.now()).text, { retain: true });
}

const update = (broker: Broker, target: string[], file: string, extra: string[] = []): ReturnType<typeof ctl> =>
  ctl(['update', ...target, '--file', file, '--key', op.file, '--key-id', op.keyId, '--url-base', `file://${shelf}`, '--url', broker.url, '--wait', '4m', ...extra]);

const events = (obs: Observer, id: string, type: string): Array<{ type: string; detail: Record<string, unknown> }> =>
  obs.got.filter((m) => m.topic === `signage/device/${id}/event`).map((m) => m.json() as { type: string; detail: Record<string, unknown> }).filter((e) => e.type === type);
const plays = (obs: Observer, id: string): PlayMsg[] => obs.got.filter((m) => m.topic === `signage/device/${id}/play`).map((m) => m.json() as PlayMsg);
const status = (obs: Observer, id: string): Record<string, unknown> | undefined =>
  obs.got.filter((m) => m.topic === `signage/device/${id}/status`).map((m) => m.json() as Record<string, unknown>).filter((s) => s.online === true).at(-1);

t.test('A to B while playing: no spot cut, B reported healthy, previous is A', async (t) => {
  const broker = await startBroker(t);
  const obs = await Observer.connect(t, broker.url, ['signage/#']);
  const b = await box(t, broker, 'upd-1', ['all']);
  await assign(obs, 'upd-1');
  b.start();
  await waitFor('a spot played on A', () => plays(obs, 'upd-1').some((p) => p.outcome === 'completed'), 90_000);
  const r = await update(broker, ['--device', 'upd-1'], path.join(shelf, path.basename(B.file)));
  t.equal(r.code, 0, [...r.out, ...r.err].join('\n'));
  t.match(r.out.join('\n'), /upd-1\tok\t9\.9\.1-b healthy/);
  t.equal(b.linked('current'), '9.9.1-b');
  t.equal(b.linked('previous'), '9.9.0-a');
  t.match(status(obs, 'upd-1'), { agentVersion: '9.9.1-b' }, 'the status carries the new version');
  t.match(events(obs, 'upd-1', 'updated'), [{ detail: { from: '9.9.0-a', to: '9.9.1-b' } }]);
  const bStart = b.runs.findIndex((x) => x.version === '9.9.1-b');
  t.ok(bStart > 0, 'B ran after A');
  t.equal(b.runs[bStart - 1]!.exit, 0, 'A stopped cleanly for the restart');
  const switched = Date.parse(String(b.runs[bStart]!.lines[0]?.time ?? '')) || Date.now();
  await waitFor('a spot played on B', () => plays(obs, 'upd-1').some((p) => p.outcome === 'completed' && Date.parse(p.startedAt) > switched), 90_000);
  const all = plays(obs, 'upd-1');
  t.same(all.filter((p) => p.outcome !== 'completed').map((p) => `${p.campaignId} ${p.outcome} ${p.startedAt}`), [], 'no spot cut or failed across the update');
  t.same(events(obs, 'upd-1', 'update-failed'), []);
});

t.test('B crashes at start: the gate rolls back to A within the deadline, update-failed, playing again', async (t) => {
  const broker = await startBroker(t);
  const obs = await Observer.connect(t, broker.url, ['signage/#']);
  const b = await box(t, broker, 'upd-2', ['all']);
  await assign(obs, 'upd-2');
  b.start();
  await waitFor('a spot played on A', () => plays(obs, 'upd-2').some((p) => p.outcome === 'completed'), 90_000);
  const sentAt = Date.now();
  const r = await update(broker, ['--device', 'upd-2'], path.join(shelf, path.basename(CRASH.file)));
  t.equal(r.code, 1, 'signagectl reports the failure');
  t.match(r.out.join('\n'), /upd-2\tFAILED\tupdate-failed health: 9\.9\.1-crash started 4 times without proving itself healthy \(crash loop\); running 9\.9\.0-a/);
  t.equal(b.linked('current'), '9.9.0-a', 'back on A');
  const failed = events(obs, 'upd-2', 'update-failed');
  t.match(failed, [{ detail: { version: '9.9.1-crash', runningVersion: '9.9.0-a', stage: 'health' } }]);
  const rolledBackAt = Date.parse(String(failed[0]?.detail.rolledBackAt));
  t.ok(rolledBackAt - sentAt < UPDATE.deadlineSec * 1000, `rolled back ${Math.round((rolledBackAt - sentAt) / 1000)} s after the command, within the ${UPDATE.deadlineSec} s deadline`);
  t.ok(b.runs.filter((x) => x.version === '9.9.1-crash').length >= 1 && b.runs.filter((x) => x.version === '9.9.1-crash').every((x) => x.exit !== 0), 'the crashing release did run, and failed');
  const back = Date.now();
  await waitFor('a spot played after the rollback', () => plays(obs, 'upd-2').some((p) => p.outcome === 'completed' && Date.parse(p.startedAt) > back), 90_000);
  t.same(plays(obs, 'upd-2').filter((p) => p.outcome !== 'completed').map((p) => p.outcome), [], 'no spot cut');
});

t.test('a tampered or badly signed release is refused by the agent: nothing switched', async (t) => {
  const broker = await startBroker(t);
  const obs = await Observer.connect(t, broker.url, ['signage/#']);
  const b = await box(t, broker, 'upd-3', ['all']);
  b.start();
  await waitFor('A online', () => status(obs, 'upd-3') !== undefined, 60_000);
  const other = opKey(t, 'op');
  const forged = await deriveRelease(t, A.file, other, '9.9.2-forged');
  copyFileSync(forged.file, path.join(shelf, path.basename(forged.file)));
  // signagectl itself refuses a manifest its --key did not sign; a forger's own tool would not.
  const r0 = await update(broker, ['--device', 'upd-3'], path.join(shelf, path.basename(forged.file)));
  t.equal(r0.code, 2);
  t.match(r0.err.join('\n'), /bad signature/);
  const { Requester } = await import('../scripts/signagectl/cmd.js');
  const { connect, connectionFrom } = await import('../scripts/signagectl/conn.js');
  const client = await connect(connectionFrom({ url: broker.url }));
  t.teardown(() => client.endAsync());
  const req = new Requester(client, 'signage', { signer: { key: op.key, keyId: op.keyId } });
  await req.start(['upd-3']);
  const ans = await req.send('upd-3', 'update', { url: `file://${shelf}/${path.basename(forged.file)}`, sha256: forged.sha256, version: forged.version, manifestSig: forged.manifestSig }, 15_000);
  t.match(ans, { ok: true, result: { accepted: true } }, 'accepted for checking');
  await waitFor('update-failed', () => events(obs, 'upd-3', 'update-failed').length === 1, 120_000);
  t.match(events(obs, 'upd-3', 'update-failed')[0]!.detail, { version: '9.9.2-forged', stage: 'verify', reason: /bad signature/ });
  t.equal(b.linked('current'), '9.9.0-a', 'nothing switched');
  t.equal(b.runs.length, 1, 'no restart');
  const ans2 = await req.send('upd-3', 'update', { url: `file://${shelf}/${path.basename(B.file)}`, sha256: 'f'.repeat(64), version: B.version, manifestSig: B.manifestSig }, 15_000);
  t.match(ans2, { ok: true });
  await waitFor('second update-failed', () => events(obs, 'upd-3', 'update-failed').length === 2, 120_000);
  t.match(events(obs, 'upd-3', 'update-failed')[1]!.detail, { version: '9.9.1-b', stage: 'download', reason: /sha256|hash|match/i });
  t.equal(b.linked('current'), '9.9.0-a', 'nothing switched');
  t.equal(b.runs.length, 1, 'no restart');
  req.stop();
});

t.test('signagectl update --canary: the canary rolls back, the rest are never touched', async (t) => {
  const broker = await startBroker(t);
  const obs = await Observer.connect(t, broker.url, ['signage/#']);
  const boxes = await Promise.all(['can-1', 'can-2', 'can-3'].map((id) => box(t, broker, id, ['all', 'lobby'])));
  for (const b of boxes) b.start();
  await waitFor('three heartbeats', () => ['can-1', 'can-2', 'can-3'].every((id) => obs.got.some((m) => m.topic === `signage/device/${id}/heartbeat`)), 90_000);
  const r = await update(broker, ['--group', 'lobby'], path.join(shelf, path.basename(CRASH.file)), ['--canary', '5%', '--discover', '7s']);
  t.equal(r.code, 1, [...r.out, ...r.err].join('\n'));
  t.match(r.out.join('\n'), /canary can-1 first/);
  t.match(r.out.join('\n'), /can-1\tFAILED\tupdate-failed health/);
  t.match(r.err.join('\n'), /the canary failed; stopped\. Not sent anything: can-2, can-3/);
  t.equal(boxes[0]!.linked('current'), '9.9.0-a', 'the canary is back on A');
  for (const b of boxes.slice(1)) {
    t.equal(b.linked('current'), '9.9.0-a', `${b.deviceId} still on A`);
    t.equal(b.linked('previous'), undefined, `${b.deviceId}: no switch ever`);
    t.equal(b.runs.length, 1, `${b.deviceId}: never restarted`);
    t.same(b.lines().filter((l) => l.msg === 'command'), [], `${b.deviceId}: no command reached it`);
    t.notOk(obs.got.some((m) => m.topic === `signage/device/${b.deviceId}/cmd`), `${b.deviceId}: nothing was published to its cmd topic`);
  }
});
