import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { MqttClient } from 'mqtt';
import t, { type Test } from 'tap';

import { brokerTool, connect, issued, refused, startProdBroker, type ProdBroker } from './helpers/prod-broker.js';
import { tempDir } from './helpers/tmp.js';
import { waitFor } from './helpers/wait.js';

// Issue 10's attacks, replayed with one device's credentials against the shipped mosquitto
// config and ACL, credentials issued by `signagectl broker`. Every "nothing arrived" is decided
// after a barrier: a later message on the same path that did arrive, so nothing is still in
// flight (mosquitto keeps one publisher's order towards one subscriber).

interface Fleet {
  broker: ProdBroker;
  dir: string;
  ca: string;
}

async function fleet(t: Test, opts: { unboundClientIds?: boolean } = {}): Promise<Fleet> {
  const dir = tempDir(t, 'broker-');
  await brokerTool(dir, 'init-ca', '--server-name', '127.0.0.1', '--no-reload');
  await brokerTool(dir, 'add-operator', '--name', 'noc', '--role', 'noc', '--no-reload');
  await brokerTool(dir, 'add-device', '--id', 'dev-a', '--groups', 'lobby,all', '--no-reload');
  await brokerTool(dir, 'add-device', '--id', 'dev-b', '--groups', 'all', '--no-reload');
  await brokerTool(dir, 'add-device', '--id', 'dev-c', '--groups', 'lobby', '--cert', '--no-reload');
  const broker = await startProdBroker(t, dir, opts);
  return { broker, dir, ca: readFileSync(path.join(dir, 'ca', 'ca.crt'), 'utf8') };
}

type Got = Array<{ topic: string; payload: string }>;

function record(c: MqttClient): Got {
  const got: Got = [];
  c.on('message', (topic, p) => got.push({ topic, payload: p.toString() }));
  return got;
}

const has = (got: Got, topic: string, payload?: string): boolean => got.some((m) => m.topic === topic && (payload === undefined || m.payload === payload));

async function noc(t: Test, f: Fleet): Promise<MqttClient> {
  return connect(t, f.broker.nocUrl, { ...issued(f.dir, 'noc'), clientId: `noc-${Math.random().toString(36).slice(2)}` });
}

/** A device as the agent connects: its own credentials, client id signage-{id}. */
async function device(t: Test, f: Fleet, id: string, as: string = id, clientId = `signage-${id}`): Promise<MqttClient> {
  const creds = issued(f.dir, as);
  const url = creds.cert !== undefined ? f.broker.certUrl : f.broker.passUrl;
  return connect(t, url, { ...creds, ca: f.ca, clientId });
}

const OWN = (id: string): string[] => ['assignment', 'override', 'cmd', 'alert'].map((k) => `signage/device/${id}/${k}`);

t.test('legitimate paths: NOC assigns (device and group), commands, and receives plays and results', async (t) => {
  const f = await fleet(t);
  const ops = await noc(t, f);
  const opsGot = record(ops);
  await ops.subscribeAsync(['signage/device/+/play', 'signage/device/+/cmd/result', 'signage/device/+/status'], { qos: 1 });
  for (const id of ['dev-a', 'dev-c']) {
    const d = await device(t, f, id);
    const got = record(d);
    await d.subscribeAsync([...OWN(id), `signage/device/${id}/status`, 'signage/group/lobby/assignment', 'signage/fleet/alert', 'signage/keys'], { qos: 1 });
    await ops.publishAsync(`signage/device/${id}/assignment`, `{"version":1,"for":"${id}"}`, { qos: 1, retain: true });
    await ops.publishAsync('signage/group/lobby/assignment', `{"version":2,"for":"${id}"}`, { qos: 1, retain: true });
    await ops.publishAsync(`signage/device/${id}/cmd`, `{"id":"c-${id}","name":"ping"}`, { qos: 1 });
    await ops.publishAsync('signage/fleet/alert', `{"id":"a-${id}"}`, { qos: 1 });
    await waitFor(`${id} gets its assignment, its group's, a command and the fleet alert`, () =>
      has(got, `signage/device/${id}/assignment`) && has(got, 'signage/group/lobby/assignment', `{"version":2,"for":"${id}"}`) &&
      has(got, `signage/device/${id}/cmd`) && has(got, 'signage/fleet/alert', `{"id":"a-${id}"}`));
    await d.publishAsync(`signage/device/${id}/play`, `{"seq":1,"deviceId":"${id}"}`, { qos: 1 });
    await d.publishAsync(`signage/device/${id}/cmd/result`, `{"id":"c-${id}","ok":true}`, { qos: 1 });
    await d.publishAsync(`signage/device/${id}/status`, '{"online":true}', { qos: 1, retain: true });
    await waitFor(`the NOC gets ${id}'s play, result and status`, () =>
      has(opsGot, `signage/device/${id}/play`) && has(opsGot, `signage/device/${id}/cmd/result`) && has(opsGot, `signage/device/${id}/status`));
    // The agent watches its own status for a late Will of an old session (agent/link/link.ts).
    await waitFor(`${id} reads back its own status`, () => has(got, `signage/device/${id}/status`, '{"online":true}'));
  }
  t.pass('every legitimate message delivered, over the password listener (dev-a) and the certificate listener (dev-c)');
});

t.test("one device's credentials: subscribing to signage/# receives nothing of the others", async (t) => {
  const f = await fleet(t);
  const ops = await noc(t, f);
  // Retained state of other screens and groups exists before the attacker subscribes.
  await ops.publishAsync('signage/device/dev-a/assignment', '{"version":1}', { qos: 1, retain: true });
  await ops.publishAsync('signage/group/lobby/assignment', '{"version":1}', { qos: 1, retain: true });
  const a = await device(t, f, 'dev-a');
  await a.publishAsync('signage/device/dev-a/status', '{"online":true}', { qos: 1, retain: true });

  const thief = await device(t, f, 'dev-b');
  const got = record(thief);
  const sub = await thief.subscribeAsync(['signage/#', '#', '$SYS/#', 'signage/device/dev-b/assignment'], { qos: 1 });
  t.comment(`SUBACK codes for signage/#, #, $SYS/#, own topic: ${sub.map((g) => g.qos).join(', ')}`);
  // Live traffic of another screen and a group it is not in, then the barrier on its own topic.
  await a.publishAsync('signage/device/dev-a/play', '{"seq":1}', { qos: 1 });
  await a.publishAsync('signage/device/dev-a/heartbeat', '{}', { qos: 1 });
  await ops.publishAsync('signage/device/dev-a/cmd', '{"id":"c-1","name":"ping"}', { qos: 1 });
  await ops.publishAsync('signage/group/lobby/override', '{"version":1}', { qos: 1, retain: true });
  await ops.publishAsync('signage/device/dev-b/assignment', '{"version":7}', { qos: 1, retain: true });
  await waitFor('the barrier on its own topic', () => has(got, 'signage/device/dev-b/assignment', '{"version":7}'));
  const foreign = got.filter((m) => !m.topic.startsWith('signage/device/dev-b/') && !m.topic.startsWith('signage/group/all/'));
  t.same(foreign, [], 'nothing of dev-a, of the lobby group or of $SYS');
});

t.test('forged publishes with one device\'s credentials are not delivered', async (t) => {
  const f = await fleet(t);
  const ops = await noc(t, f);
  const opsGot = record(ops);
  await ops.subscribeAsync(['signage/device/+/play', 'signage/device/+/status', 'signage/device/+/cmd/result', 'signage/device/+/event',
    'signage/device/+/assignment', 'signage/device/+/override', 'signage/group/+/assignment', 'signage/group/+/override', 'signage/fleet/alert', 'signage/keys'], { qos: 1 });
  const a = await device(t, f, 'dev-a');
  const aGot = record(a);
  await a.subscribeAsync([...OWN('dev-a'), 'signage/group/lobby/assignment', 'signage/group/all/assignment', 'signage/fleet/alert', 'signage/keys'], { qos: 1 });

  const thief = await device(t, f, 'dev-b');
  const poison = '{"version":9007199254740991,"campaigns":[]}';
  const forged = [
    'signage/group/lobby/assignment', // a group it is not in
    'signage/group/all/assignment', // its own group: devices never write desired state
    'signage/group/all/override',
    'signage/device/dev-a/assignment',
    'signage/device/dev-a/cmd',
    'signage/device/dev-b/assignment', // not even its own
    'signage/fleet/alert',
    'signage/keys',
    'signage/device/dev-a/play',
    'signage/device/dev-a/status',
    'signage/device/dev-a/cmd/result',
    'signage/device/dev-a/event',
  ];
  const reasons: string[] = [];
  for (const topic of forged) {
    await thief.publishAsync(topic, poison, { qos: 1, retain: true }).then(
      () => reasons.push(`${topic}: acked`),
      (e: { code?: number }) => reasons.push(`${topic}: PUBACK ${e.code}`),
    );
  }
  t.same(reasons, forged.map((tp) => `${tp}: PUBACK 135`), 'each refused with MQTT 5 reason 0x87 "not authorized"');
  await thief.publishAsync('signage/device/dev-b/status', '{"online":true}', { qos: 1, retain: true });
  await waitFor('the NOC gets the barrier (dev-b\'s own status)', () => has(opsGot, 'signage/device/dev-b/status'));
  await ops.publishAsync('signage/device/dev-a/override', '{"version":1}', { qos: 1, retain: true });
  await waitFor('dev-a gets the NOC\'s barrier', () => has(aGot, 'signage/device/dev-a/override'));
  t.same(opsGot.filter((m) => m.payload === poison), [], 'the NOC received none of the forgeries');
  t.same(aGot.filter((m) => m.payload === poison), [], 'dev-a received none of them');

  // Nothing was retained either: a fresh subscriber (a screen with a wiped store) finds no poison.
  const fresh = await device(t, f, 'dev-a', 'dev-a', 'signage-dev-a-2');
  const freshGot = record(fresh);
  await fresh.subscribeAsync([...OWN('dev-a'), 'signage/group/lobby/assignment', 'signage/group/all/assignment', 'signage/fleet/alert', 'signage/keys'], { qos: 1 });
  await ops.publishAsync('signage/device/dev-a/alert', '{"id":"barrier"}', { qos: 1 });
  await waitFor('fresh subscriber barrier', () => has(freshGot, 'signage/device/dev-a/alert'));
  t.same(freshGot.filter((m) => m.payload === poison), [], 'no forged retained message is stored');
});

t.test("reusing another screen's client id does not kick it off (and does without the binding)", async (t) => {
  for (const bound of [true, false]) {
    await t.test(bound ? 'shipped config' : 'control: use_username_as_clientid removed', async (t) => {
      const f = await fleet(t, { unboundClientIds: !bound });
      const ops = await noc(t, f);
      const opsGot = record(ops);
      await ops.subscribeAsync('signage/device/+/status', { qos: 1 });
      const a = await device(t, f, 'dev-a');
      let closed = 0;
      a.on('close', () => closed++);
      // The thief takes the victim's client id, from the password and the certificate listener.
      await device(t, f, 'dev-a', 'dev-b', 'signage-dev-a');
      await device(t, f, 'dev-a', 'dev-c', 'signage-dev-a');
      // The victim's own round trip after the thieves' CONNACKs: a takeover would have closed it first.
      const beat = a.publishAsync('signage/device/dev-a/status', '{"online":true,"n":2}', { qos: 1 }).catch(() => undefined);
      if (bound) {
        await beat;
        await waitFor('the NOC gets dev-a\'s status', () => has(opsGot, 'signage/device/dev-a/status', '{"online":true,"n":2}'));
        t.equal(closed, 0, 'dev-a still connected');
        t.equal(a.connected, true);
      } else {
        await waitFor('dev-a is kicked off', () => closed > 0);
        t.pass('without the binding the same attack disconnects the victim');
      }
    });
  }
});

t.test('listeners refuse what is not a device credential', async (t) => {
  const f = await fleet(t);
  const b = issued(f.dir, 'dev-b');
  t.ok(await refused(f.broker.passUrl, { ca: f.ca, username: 'dev-b', password: 'guess' }), 'wrong password');
  t.ok(await refused(f.broker.passUrl, { ca: f.ca }), 'anonymous');
  t.ok(await refused(f.broker.certUrl, { ca: f.ca, ...b }), 'certificate listener without a certificate');
  t.ok(await refused(f.broker.passUrl, { ca: f.ca, username: 'dev-c', password: '' }), 'a certificate device has no password');
});

t.test('a device revoked mid-run is cut off; its replacement credentials work; the others are untouched', async (t) => {
  const f = await fleet(t);
  const ops = await noc(t, f);
  for (const id of ['dev-a', 'dev-c']) {
    const old = issued(f.dir, id);
    const url = old.cert !== undefined ? f.broker.certUrl : f.broker.passUrl;
    const d = await device(t, f, id);
    const got = record(d);
    let closed = 0;
    d.on('close', () => closed++);
    await d.subscribeAsync(OWN(id), { qos: 1 });
    await ops.publishAsync(`signage/device/${id}/assignment`, '{"version":1}', { qos: 1, retain: true });
    await waitFor(`${id} receives before revocation`, () => has(got, `signage/device/${id}/assignment`, '{"version":1}'));

    await brokerTool(f.dir, 'revoke-device', '--id', id, '--pid', String(f.broker.pid));
    // The live session: either dropped at the reload, or left with no topic at all.
    await waitFor(`${id}'s old credentials refused after the reload`, async () => (await refused(url, { ca: f.ca, ...old, clientId: 'probe' })) !== undefined);
    await ops.publishAsync(`signage/device/${id}/assignment`, '{"version":2}', { qos: 1, retain: true });
    await ops.publishAsync(`signage/device/${id}/cmd`, '{"id":"after"}', { qos: 1 });
    const other = await device(t, f, 'dev-b');
    const otherGot = record(other);
    await other.subscribeAsync(OWN('dev-b'), { qos: 1 });
    await ops.publishAsync('signage/device/dev-b/assignment', `{"after":"${id}"}`, { qos: 1, retain: true });
    await waitFor('dev-b still served (barrier)', () => has(otherGot, 'signage/device/dev-b/assignment', `{"after":"${id}"}`));
    // Barrier for the live session itself: its own QoS 1 publish is answered after everything
    // the broker had already queued to it.
    if (closed === 0) await d.publishAsync(`signage/device/${id}/event`, '{}', { qos: 1 }).catch(() => undefined);
    t.notOk(has(got, `signage/device/${id}/assignment`, '{"version":2}') || has(got, `signage/device/${id}/cmd`), `${id}'s live session gets nothing after revocation`);
    t.comment(`${id}: live session ${closed > 0 ? 'disconnected at the reload' : 'kept open with every topic denied'}`);

    await brokerTool(f.dir, 'add-device', '--id', id, '--groups', 'lobby', ...(old.cert !== undefined ? ['--cert'] : []), '--pid', String(f.broker.pid));
    const fresh = issued(f.dir, id);
    t.not(fresh.password ?? fresh.cert, old.password ?? old.cert, 'new credentials');
    let r: MqttClient | undefined;
    await waitFor(`${id}'s replacement credentials accepted`, async () => {
      r = await connect(t, url, { ca: f.ca, ...fresh, clientId: `signage-${id}` }).catch(() => undefined);
      return r !== undefined;
    });
    const rGot = record(r!);
    await r!.subscribeAsync(OWN(id), { qos: 1 });
    await waitFor(`${id} (replaced) receives its retained assignment`, () => has(rGot, `signage/device/${id}/assignment`, '{"version":2}'));
    t.ok(await refused(url, { ca: f.ca, ...old, clientId: 'probe' }), `${id}'s old credentials stay refused`);
  }
});
