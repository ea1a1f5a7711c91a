import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { startBroker } from './helpers/mosquitto.js';
import { makeConfig, makeLink, Observer, openStore, rig, tempDir, topic } from './helpers/link-rig.js';
import { waitFor } from './helpers/wait.js';

const childScript = fileURLToPath(new URL('./helpers/link-child.ts', import.meta.url));

/** Runs a link in a child process (same data dir semantics as the agent); resolves once connected. */
async function spawnLink(t: Tap.Test, url: string, dir: string): Promise<{ child: ChildProcess; session: number }> {
  const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));
  const child = spawn(process.execPath, [...loader, childScript, url, dir], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1' } });
  t.teardown(() => {
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  });
  let out = '';
  const session = await new Promise<number>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /connected (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`link child exited ${code}`)));
  });
  return { child, session };
}

namespace Tap {
  export type Test = { teardown(fn: () => unknown): void };
}

t.test('birth on connect: retained status with session, version, bootedAt, applied', async (t) => {
  const r = await rig(t);
  const birth = r.obs.on('status').at(-1)!;
  t.equal(birth.retain, false, 'live delivery (observer subscribed before)');
  const s = birth.json();
  t.equal(s.online, true);
  t.equal(s.session, 1, 'first connection of a fresh store is session 1');
  t.equal(s.agentVersion, '0.1.0-test');
  t.match(s.bootedAt, /^\d{4}-\d\d-\d\dT/);
  t.same(s.applied, { groups: {}, overrides: { groups: {} } });
  t.equal(r.link.connected(), true);
  // A late subscriber gets it retained.
  const late = await Observer.connect(t, r.broker.url, [topic.device('status')]);
  await waitFor('retained status', () => late.got.length > 0);
  t.equal(late.got[0]!.retain, true);
  t.equal(late.got[0]!.json().session, 1);
});

t.test('session rises on every reconnect and across restarts of the agent', async (t) => {
  const r = await rig(t);
  await r.broker.kill();
  await waitFor('link notices the broker is gone', () => !r.link.connected());
  await r.broker.restart();
  await waitFor('birth of session 2', () => r.obs.on('status').some((m) => m.json().session === 2 && m.json().online === true));
  t.equal(r.link.currentSession(), 2);
  await r.link.stop();
  const off = r.obs.on('status').at(-1);
  await waitFor('clean offline status', () => r.obs.on('status').some((m) => m.json().online === false && m.json().session === 2));
  t.ok(off, 'a status was seen');
  // A new agent process on the same data dir continues the count.
  const link2 = makeLink(t, r.config, r.store);
  await link2.start();
  await waitFor('birth of session 3', () => r.obs.on('status').some((m) => m.json().session === 3 && m.json().online === true));
  t.equal(link2.currentSession(), 3);
});

t.test('clean stop publishes offline retained and no Will follows', async (t) => {
  const r = await rig(t);
  await r.link.stop();
  await waitFor('offline', () => r.obs.on('status').some((m) => m.json().online === false));
  const late = await Observer.connect(t, r.broker.url, [topic.device('status')]);
  await waitFor('retained', () => late.got.length > 0);
  t.same(late.got[0]!.json(), { online: false, session: 1 }, 'retained offline with the session');
  t.equal(r.obs.on('status').filter((m) => m.json().online === false).length, 1, 'exactly one offline message (no Will on a clean stop)');
});

t.test('the broker down at start: start() resolves, the link keeps trying and connects later', async (t) => {
  const broker = await startBroker(t);
  await broker.stop();
  const dir = tempDir(t);
  const store = await openStore(t, dir);
  const link = makeLink(t, makeConfig(dir, broker.url), store);
  await link.start();
  t.equal(link.connected(), false, 'not connected, no throw');
  await new Promise((r) => setTimeout(r, 500));
  await broker.restart();
  await waitFor('connected after the broker came up', () => link.connected());
  t.equal(link.currentSession(), 1, 'failed attempts do not consume session numbers');
});

t.test('SIGKILLed agent: the broker publishes its Will with that session; the next run is told apart', async (t) => {
  const broker = await startBroker(t);
  const dir = tempDir(t);
  const obs = await Observer.connect(t, broker.url);
  const { child, session } = await spawnLink(t, broker.url, dir);
  await waitFor('child birth', () => obs.on('status').some((m) => m.json().online === true && m.json().session === session));
  child.kill('SIGKILL');
  await waitFor('Will', () => obs.on('status').some((m) => m.json().online === false));
  const will = obs.on('status').find((m) => m.json().online === false)!;
  t.same(will.json(), { online: false, session }, 'the Will carries the dead session number');
  t.equal(will.retain, false, 'delivered live');

  const store = await openStore(t, dir);
  const link = makeLink(t, makeConfig(dir, broker.url), store);
  await link.start();
  await waitFor('new birth', () => obs.on('status').some((m) => m.json().online === true && m.json().session === session + 1));
  const late = await Observer.connect(t, broker.url, [topic.device('status')]);
  await waitFor('retained', () => late.got.length > 0);
  t.equal(late.got[0]!.json().session, session + 1, 'retained status is the current session');
  t.equal(late.got[0]!.json().online, true);
});

t.test('session takeover from a frozen agent: the new birth is the last word; a late old Will is overridden', async (t) => {
  const broker = await startBroker(t);
  const dir = tempDir(t);
  const obs = await Observer.connect(t, broker.url);
  const { child, session } = await spawnLink(t, broker.url, dir);
  await waitFor('child birth', () => obs.on('status').some((m) => m.json().online === true && m.json().session === session));
  child.kill('SIGSTOP'); // its TCP connection stays open: a half-dead screen
  const store = await openStore(t, dir);
  const link = makeLink(t, makeConfig(dir, broker.url), store);
  await link.start();
  await waitFor('new birth', () => obs.on('status').some((m) => m.json().online === true && m.json().session === session + 1));
  const seq = obs.on('status').map((m) => `${m.json().online}:${m.json().session}`);
  // mosquitto 2.0.11 takes the session over without publishing the old Will (MQTT 5 allows
  // either); if a broker does publish it, it must come before the new birth.
  const willAt = seq.indexOf(`false:${session}`);
  const birthAt = seq.indexOf(`true:${session + 1}`);
  t.ok(willAt < birthAt, `no old Will after the new birth: ${seq.join(' ')}`);
  t.equal(seq.at(-1), `true:${session + 1}`, 'the current session is the last word');

  // A Will of an older session arriving late (e.g. replayed) is corrected by the live agent.
  await obs.publish(topic.device('status'), JSON.stringify({ online: false, session }), { retain: true });
  await waitFor('status re-asserted', () => obs.on('status').filter((m) => m.json().online === true && m.json().session === session + 1).length >= 2);
  const late = await Observer.connect(t, broker.url, [topic.device('status')]);
  await waitFor('retained', () => late.got.length > 0);
  t.same([late.got[0]!.json().online, late.got[0]!.json().session], [true, session + 1]);
});

t.test('a dead link (broker frozen) is detected by keepalive and the link recovers', async (t) => {
  const r = await rig(t);
  const t0 = Date.now();
  r.broker.signal('SIGSTOP');
  await waitFor('dead link detected', () => !r.link.connected(), 20_000);
  t.pass('disconnected after keepalive timeout');
  t.comment(`detected after ${Date.now() - t0} ms with keepalive 5 s (bound: 1.5 keepalives after the last packet from the broker)`);
  r.broker.signal('SIGCONT');
  await waitFor('reconnected', () => r.link.connected() && r.link.currentSession() === 2, 20_000);
  t.equal(r.link.currentSession(), 2);
});
