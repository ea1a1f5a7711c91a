import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import t from 'tap';
import { Observer, rig, topic } from './helpers/link-rig.js';
import { waitFor } from './helpers/wait.js';

// These tests check the reason of every rejection, one event each: coalescing (at most one
// `rejected` row per topic per minute, PROTOCOL v1.1 §3) is off here and tested in link-flood.test.ts.
const EACH_REJECTION = { rejectedWindowMs: 0 };

const cmd = (o: Record<string, unknown>): string => JSON.stringify(o);

t.test('MQTT 5 response topic + correlation data', async (t) => {
  const r = await rig(t);
  const caller = await Observer.connect(t, r.broker.url, ['noc/replies/#']);
  const corr = Buffer.from(randomUUID());
  await caller.publish(topic.device('cmd'), cmd({ id: 'c-1', name: 'ping' }), { properties: { responseTopic: 'noc/replies/1', correlationData: corr } });
  await waitFor('reply', () => caller.got.length === 1);
  const rep = caller.got[0]!;
  t.equal(rep.topic, 'noc/replies/1');
  t.same(rep.correlationData, corr, 'correlation data echoed');
  t.equal(rep.json().id, 'c-1');
  t.equal(rep.json().ok, true);
  t.equal(rep.json().result.pong, true);
  t.equal(r.obs.on('cmd/result').length, 0, 'not on the default topic');
});

t.test('replyTo (v3 style), default result topic, and every built-in command', async (t) => {
  const r = await rig(t);
  const caller = await Observer.connect(t, r.broker.url, ['noc/r']);
  await caller.publish(topic.device('cmd'), cmd({ id: 'c-2', name: 'play-now', args: { campaignId: 'ihanoi-2024' }, replyTo: 'noc/r' }));
  await waitFor('reply', () => caller.got.length === 1);
  t.same(caller.got[0]!.json(), { id: 'c-2', ok: true, result: { queued: 'ihanoi-2024' } });
  t.same(r.host.played, ['ihanoi-2024']);

  const run = async (body: Record<string, unknown>): Promise<any> => {
    const n = r.obs.on('cmd/result').length;
    await r.obs.publish(topic.device('cmd'), cmd(body));
    await waitFor(`result of ${String(body.id)}`, () => r.obs.on('cmd/result').length === n + 1);
    return r.obs.on('cmd/result').at(-1)!.json();
  };
  t.same(await run({ id: 'c-3', name: 'status' }), { id: 'c-3', ok: true, result: { state: 'fine' } });
  const shot = await run({ id: 'c-4', name: 'screenshot' });
  t.equal(Buffer.from(shot.result.png, 'base64').subarray(0, 4).toString('hex'), '89504e47', 'PNG bytes base64');
  t.same(await run({ id: 'c-5', name: 'restart-player' }), { id: 'c-5', ok: true, result: {} });
  t.equal(r.host.restarts, 1);
  t.same(await run({ id: 'c-6', name: 'report', args: { date: '2024-08-15' } }), { id: 'c-6', ok: true, result: { date: '2024-08-15', campaigns: [] } });
  t.same(await run({ id: 'c-7', name: 'report', args: { date: '2024-02-30' } }), { id: 'c-7', ok: false, error: 'args.date: must be a real date YYYY-MM-DD' });
  t.same(await run({ id: 'c-8', name: 'play-now', args: { campaignId: 'missing' } }), { id: 'c-8', ok: false, error: 'no such campaign: missing' }, 'host error becomes `error`');
  t.same(await run({ id: 'c-9', name: 'play-now', args: {} }), { id: 'c-9', ok: false, error: 'args.campaignId: must be a campaign id' });
});

t.test('expired, duplicate, unknown and malformed commands', async (t) => {
  const r = await rig(t, {}, EACH_REJECTION);
  const run = async (body: string): Promise<any> => {
    const n = r.obs.on('cmd/result').length;
    await r.obs.publish(topic.device('cmd'), body);
    await waitFor('result', () => r.obs.on('cmd/result').length === n + 1);
    return r.obs.on('cmd/result').at(-1)!.json();
  };
  const expired = await run(cmd({ id: 'e-1', name: 'restart-player', expiresAt: '2020-01-01T00:00:00Z' }));
  t.same(expired, { id: 'e-1', ok: false, error: 'expired at 2020-01-01T00:00:00Z' });
  t.equal(r.host.restarts, 0, 'an expired command never runs');

  t.equal((await run(cmd({ id: 'd-1', name: 'restart-player', expiresAt: '2999-01-01T00:00:00Z' }))).ok, true);
  t.same(await run(cmd({ id: 'd-1', name: 'restart-player' })), { id: 'd-1', ok: false, error: 'duplicate command id' });
  t.equal(r.host.restarts, 1, 'executed at most once');

  t.same(await run(cmd({ id: 'u-1', name: 'self-destruct' })), { id: 'u-1', ok: false, error: 'unknown command "self-destruct"' });
  t.same(await run(cmd({ id: 'u-2', name: 'constructor' })), { id: 'u-2', ok: false, error: 'unknown command "constructor"' });

  // v1.1 §3: an unknown field is ignored; a known one of the wrong type makes it malformed.
  t.same(await run(cmd({ id: 'f-1', name: 'self-destruct', colour: 'red' })), { id: 'f-1', ok: false, error: 'unknown command "self-destruct"' });
  const bad = await run(cmd({ id: 'm-1', name: 'ping', colour: 'red', args: 'loud' }));
  t.equal(bad.id, 'm-1');
  t.equal(bad.ok, false);
  t.match(bad.error, /args/);
  await waitFor('rejected event', () => r.obs.events('rejected').length === 1);
  t.same(r.obs.events('rejected')[0].detail.topic, topic.device('cmd'));

  // Nothing to answer to: no id, no response topic. Only the rejected event.
  await r.obs.publish(topic.device('cmd'), 'garbage');
  await waitFor('second rejected event', () => r.obs.events('rejected').length === 2);
  t.match(r.obs.events('rejected')[1].detail.reason, /not JSON/);
  t.equal(r.link.connected(), true);
});

t.test('heartbeat: ts, deviceId, uptimeSec, host fields, backlog; QoS 0, not retained', async (t) => {
  const r = await rig(t);
  await waitFor('heartbeat', () => r.obs.on('heartbeat').length >= 1);
  const hb = r.obs.on('heartbeat')[0]!;
  t.equal(hb.retain, false);
  const j = hb.json();
  t.match(j, { deviceId: 'dev-1', cpuTempC: 51.5, load1: 0.3, player: { state: 'playing', campaignId: 'c1' }, clockSynced: true, compliance: [] });
  t.match(j.ts, /^\d{4}-\d\d-\d\dT/);
  t.ok(j.uptimeSec >= 5, 'uptime counts from bootedAt');
  t.type(j.backlog, 'number');
  await waitFor('a periodic heartbeat', () => r.obs.on('heartbeat').length >= 2, 15_000);
  t.pass('heartbeats repeat every heartbeatSec');
});

t.test('§9 signed commands: envelope, target and expiresAt required', async (t) => {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(12);
  const r = await rig(t, { security: { assignmentKeys: [`noc:${raw.toString('base64')}`] } }, EACH_REJECTION);
  // v1.1: a signed command carries issuedAt, and its expiresAt is at most 24 h after it.
  const signed = (doc: object): string => {
    const bytes = Buffer.from(JSON.stringify({ issuedAt: new Date().toISOString(), ...doc }));
    return JSON.stringify({ payload: bytes.toString('base64'), sig: sign(null, bytes, privateKey).toString('base64'), keyId: 'noc' });
  };
  const results = (): any[] => r.obs.on('cmd/result').map((m) => m.json());
  const target = 'device/dev-1';
  const soon = new Date(Date.now() + 600_000).toISOString();
  await r.obs.publish(topic.device('cmd'), signed({ id: 's-1', name: 'restart-player', target, expiresAt: soon }));
  await waitFor('signed command ran', () => results().length === 1);
  t.same(results()[0], { id: 's-1', ok: true, result: {} });
  t.equal(r.host.restarts, 1);

  const bad: [string, string, RegExp][] = [
    ['unsigned', cmd({ id: 's-2', name: 'restart-player', target, expiresAt: '2999-01-01T00:00:00Z' }), /signed envelope required/],
    ['no expiresAt', signed({ id: 's-3', name: 'restart-player', target }), /expiresAt/],
    ['other screen', signed({ id: 's-4', name: 'restart-player', target: 'device/dev-2', expiresAt: soon }), /does not match/],
  ];
  for (const [name, payload, reason] of bad) {
    const n = r.obs.events('rejected').length;
    await r.obs.publish(topic.device('cmd'), payload);
    await waitFor(name, () => r.obs.events('rejected').length === n + 1);
    t.match(r.obs.events('rejected').at(-1).detail.reason, reason, name);
  }
  // Replaying the good one is a duplicate id, answered but not run.
  await r.obs.publish(topic.device('cmd'), signed({ id: 's-1', name: 'restart-player', target, expiresAt: soon }));
  await waitFor('replay answered', () => results().some((x) => x.id === 's-1' && x.ok === false));
  t.equal(r.host.restarts, 1, 'a replayed signed command does not run again');
});
