import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { MqttClient } from 'mqtt';
import t, { type Test } from 'tap';

import { brokerTool, connect, issued, refused, startProdBroker, type ProdBroker } from './helpers/prod-broker.js';
import { tempDir } from './helpers/tmp.js';
import { waitFor } from './helpers/wait.js';

// The same attacks against the shipped dynamic-security config (provisioning/broker/
// mosquitto-dynsec.conf), with the roles and clients made by `signagectl broker ... --dynsec`.
// Barriers as in broker-acl.test.ts: "nothing arrived" is decided after a later message did.

interface Fleet {
  broker: ProdBroker;
  dir: string;
  ca: string;
  dyn: string[];
}

async function fleet(t: Test): Promise<Fleet> {
  const dir = tempDir(t, 'dynsec-');
  await brokerTool(dir, 'init-ca', '--server-name', '127.0.0.1', '--no-reload'); // the server certificate
  execFileSync('mosquitto_ctrl', ['dynsec', 'init', path.join(dir, 'dynamic-security.json'), 'admin', 'admin-pw'], { stdio: 'ignore' });
  writeFileSync(path.join(dir, 'admin.pass'), 'admin-pw\n');
  const broker = await startProdBroker(t, dir, { conf: 'mosquitto-dynsec.conf' });
  const dyn = ['--dynsec', broker.nocUrl, '--admin-user', 'admin', '--admin-password-file', path.join(dir, 'admin.pass'), '--ca', path.join(dir, 'ca', 'ca.crt')];
  await brokerTool(dir, 'dynsec-init', ...dyn);
  await brokerTool(dir, 'add-operator', '--name', 'noc', '--role', 'noc', ...dyn);
  await brokerTool(dir, 'add-device', '--id', 'dev-a', '--groups', 'lobby,all', ...dyn);
  await brokerTool(dir, 'add-device', '--id', 'dev-b', '--groups', 'all', ...dyn);
  return { broker, dir, ca: readFileSync(path.join(dir, 'ca', 'ca.crt'), 'utf8'), dyn };
}

type Got = Array<{ topic: string; payload: string }>;
function record(c: MqttClient): Got {
  const got: Got = [];
  c.on('message', (topic, p) => got.push({ topic, payload: p.toString() }));
  return got;
}
const has = (got: Got, topic: string, payload?: string): boolean => got.some((m) => m.topic === topic && (payload === undefined || m.payload === payload));
const OWN = (id: string): string[] => ['assignment', 'override', 'cmd', 'alert'].map((k) => `signage/device/${id}/${k}`);

const noc = (t: Test, f: Fleet): Promise<MqttClient> => connect(t, f.broker.nocUrl, { ...issued(f.dir, 'noc'), clientId: `noc-${Math.random().toString(36).slice(2)}` });
const device = (t: Test, f: Fleet, id: string, as = id, clientId = `signage-${id}`): Promise<MqttClient> =>
  connect(t, f.broker.passUrl, { ...issued(f.dir, as), ca: f.ca, clientId });

t.test('dynsec: legitimate paths, eavesdropping and forgeries', async (t) => {
  const f = await fleet(t);
  const ops = await noc(t, f);
  const opsGot = record(ops);
  await ops.subscribeAsync(['signage/device/+/play', 'signage/device/+/status', 'signage/device/+/assignment', 'signage/group/+/assignment'], { qos: 1 });
  const a = await device(t, f, 'dev-a');
  const aGot = record(a);
  await a.subscribeAsync([...OWN('dev-a'), 'signage/group/lobby/assignment', 'signage/fleet/alert'], { qos: 1 });
  await ops.publishAsync('signage/device/dev-a/assignment', '{"version":1}', { qos: 1, retain: true });
  await ops.publishAsync('signage/group/lobby/assignment', '{"version":1}', { qos: 1, retain: true });
  await ops.publishAsync('signage/fleet/alert', '{"id":"x"}', { qos: 1 });
  await waitFor('dev-a gets its assignment, its group\'s and the fleet alert', () =>
    has(aGot, 'signage/device/dev-a/assignment') && has(aGot, 'signage/group/lobby/assignment') && has(aGot, 'signage/fleet/alert'));
  await a.publishAsync('signage/device/dev-a/play', '{"seq":1}', { qos: 1 });
  await waitFor('the NOC gets dev-a\'s play', () => has(opsGot, 'signage/device/dev-a/play'));

  const thief = await device(t, f, 'dev-b');
  const got = record(thief);
  // mqtt.js rejects a SUBACK carrying a refusal; the packet has the per-topic codes.
  const granted = await thief.subscribeAsync(['signage/#', 'signage/device/dev-b/assignment'], { qos: 1 }).then(
    (g) => g.map((x) => x.qos as number),
    (e: { packet?: { granted?: number[] } }) => e.packet?.granted ?? [],
  );
  t.same(granted, [135, 1], 'subscribing to signage/# is refused (0x87); its own topic is granted');
  const poison = '{"version":9007199254740991}';
  const reasons: string[] = [];
  for (const topic of ['signage/group/lobby/assignment', 'signage/group/all/assignment', 'signage/device/dev-a/assignment', 'signage/device/dev-a/play', 'signage/device/dev-a/status']) {
    await thief.publishAsync(topic, poison, { qos: 1, retain: true }).then(() => reasons.push(`${topic}: acked`), (e: { code?: number }) => reasons.push(`${topic}: ${e.code}`));
  }
  t.ok(reasons.every((r) => r.endsWith(': 135')), `forgeries refused: ${reasons.join(', ')}`);
  await a.publishAsync('signage/device/dev-a/play', '{"seq":2}', { qos: 1 });
  await ops.publishAsync('signage/device/dev-b/assignment', '{"version":7}', { qos: 1, retain: true });
  await waitFor('barriers', () => has(got, 'signage/device/dev-b/assignment', '{"version":7}') && has(opsGot, 'signage/device/dev-b/assignment', '{"version":7}'));
  await thief.publishAsync('signage/device/dev-b/status', '{"online":true}', { qos: 1 });
  await waitFor('the NOC gets dev-b\'s own status (barrier)', () => has(opsGot, 'signage/device/dev-b/status'));
  t.same(got.filter((m) => !m.topic.startsWith('signage/device/dev-b/')), [], 'the thief received nothing of dev-a or the lobby');
  t.same(opsGot.filter((m) => m.payload === poison), [], 'no forgery delivered');
  await ops.publishAsync('signage/device/dev-a/override', '{"b":1}', { qos: 1 });
  await waitFor('dev-a barrier', () => has(aGot, 'signage/device/dev-a/override'));
  t.same(aGot.filter((m) => m.payload === poison), [], 'dev-a received no forgery');
});

t.test("dynsec: another screen's client id is refused, and a revoked device is cut off at once", async (t) => {
  const f = await fleet(t);
  const a = await device(t, f, 'dev-a');
  let closed = 0;
  a.on('close', () => closed++);
  for (const listener of [f.broker.passUrl, f.broker.nocUrl]) {
    t.ok(await refused(listener, { ...issued(f.dir, 'dev-b'), ca: f.ca, clientId: 'signage-dev-a' }), `dev-b as client id signage-dev-a refused on ${listener}`);
  }
  await a.publishAsync('signage/device/dev-a/status', '{"online":true}', { qos: 1 });
  t.equal(closed, 0, 'dev-a never kicked off');

  const old = issued(f.dir, 'dev-a');
  await brokerTool(f.dir, 'revoke-device', '--id', 'dev-a', ...f.dyn);
  await waitFor('the live session is disconnected', () => closed > 0);
  t.ok(await refused(f.broker.passUrl, { ...old, ca: f.ca, clientId: 'signage-dev-a' }), 'reconnect refused');
  await brokerTool(f.dir, 'add-device', '--id', 'dev-a', '--groups', 'lobby', ...f.dyn);
  const fresh = issued(f.dir, 'dev-a');
  t.not(fresh.password, old.password);
  const r = await device(t, f, 'dev-a');
  const rGot = record(r);
  await r.subscribeAsync(OWN('dev-a'), { qos: 1 });
  const ops = await noc(t, f);
  await ops.publishAsync('signage/device/dev-a/assignment', '{"version":3}', { qos: 1, retain: true });
  await waitFor('the replacement receives', () => has(rGot, 'signage/device/dev-a/assignment', '{"version":3}'));
  t.ok(await refused(f.broker.passUrl, { ...old, ca: f.ca, clientId: 'signage-dev-a' }), 'the old password stays refused');
});
