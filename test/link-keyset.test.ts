import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import t from 'tap';
import { rawPublicKeyOf, sealEnvelope } from '../agent/protocol/envelope.js';
import { assignment, FakeHost, makeLink, Observer, rig, topic, DEVICE, PREFIX } from './helpers/link-rig.js';
import { waitFor } from './helpers/wait.js';

// Issue 10 item 3: a key set on {p}/keys, signed by an offline root key named in the config,
// lists scoped operator keys; the agent applies the newest valid one, keeps it in the store,
// and takes documents signed by those keys only within scope and before expiry. Rotation and
// revocation are a new key set: no restart, no site visit.

const EACH_REJECTION = { rejectedWindowMs: 0 };
const KEYS = `${PREFIX}/keys`;
const iso = (ms: number): string => new Date(ms).toISOString();
const target = `device/${DEVICE}`;

interface K { id: string; key: KeyObject; pub: string }
const key = (id: string): K => {
  const { privateKey } = generateKeyPairSync('ed25519');
  return { id, key: privateKey, pub: rawPublicKeyOf(privateKey).toString('base64') };
};
const entry = (k: K, targets: string[], kinds: string[], expiresAt = iso(Date.now() + 86_400_000)): object => ({ keyId: k.id, publicKey: k.pub, scopes: { targets, kinds }, expiresAt });
const keySet = (root: K, version: number, keys: object[]): string => sealEnvelope({ version, issuedAt: iso(Date.now()), keys }, root.key, root.id);
const doc = (k: K, version: number, tgt = target, extra: object = {}): string => sealEnvelope({ ...assignment(version), target: tgt, issuedAt: iso(Date.now()), ...extra }, k.key, k.id);

async function rejectedReason(obs: Observer, tp: string, payload: string, what: string, retain = false): Promise<string> {
  const before = obs.events('rejected').length;
  await obs.publish(tp, payload, { retain });
  await waitFor(what, () => obs.events('rejected').length === before + 1);
  return obs.events('rejected').at(-1).detail.reason as string;
}

t.test('a key set signed by a root key: scoped, expiring operator keys; rotation without a restart', async (t) => {
  const root = key('root-1');
  const alice = key('alice'); // device assignments and overrides, every device
  const bob = key('bob'); // commands for group lobby only
  const carol = key('carol'); // expired
  const dave = key('dave'); // the next key set's only key
  const r = await rig(t, { security: { rootKeys: [`${root.id}:${root.pub}`] } }, EACH_REJECTION);

  // Before any key set: signed mode, and nothing verifies (a root key signs key sets only).
  t.match(await rejectedReason(r.obs, topic.device('assignment'), doc(alice, 1), 'no key set yet'), /unknown keyId "alice"/);
  t.match(await rejectedReason(r.obs, topic.device('assignment'), doc(root, 1), 'root signs a document'), /root key: it signs key sets only/);
  t.match(await rejectedReason(r.obs, topic.device('assignment'), JSON.stringify(assignment(1)), 'plain'), /signed envelope required/);

  // Forged key sets: signed by a non-root key, tampered, poisoned version.
  t.match(await rejectedReason(r.obs, KEYS, keySet(alice, 1, [entry(alice, ['*'], ['assignment'])]), 'self-signed set'), /not a root key/);
  const good1 = keySet(root, 1, [entry(alice, ['device/*'], ['assignment', 'override']), entry(bob, ['group/lobby'], ['cmd']), entry(carol, ['*'], ['assignment'], iso(Date.now() - 1000))]);
  const tampered = JSON.stringify({ ...JSON.parse(good1), payload: Buffer.from(JSON.stringify({ version: 1, issuedAt: iso(Date.now()), keys: [entry(alice, ['*'], ['assignment', 'override', 'cmd'])] })).toString('base64') });
  t.match(await rejectedReason(r.obs, KEYS, tampered, 'tampered set'), /bad signature/);
  t.match(await rejectedReason(r.obs, KEYS, keySet(root, Number.MAX_SAFE_INTEGER, []), 'poisoned set version'), /more than a day ahead/);
  t.match(await rejectedReason(r.obs, KEYS, keySet(root, 1, [entry(key('root-1'), ['*'], ['cmd'])]), 'redefines a configured id'), /configured key/);
  t.match(await rejectedReason(r.obs, KEYS, keySet(root, 1, [entry({ ...root, id: 'not-root' }, ['*'], ['cmd'])]), 'the root key under another id'), /is a root key/);

  // The real one, retained as the NOC publishes it.
  await r.obs.publish(KEYS, good1, { retain: true });
  await waitFor('key set applied', () => r.obs.events('applied').some((e) => e.detail.kind === 'keys'));
  t.same(r.obs.events('applied').find((e) => e.detail.kind === 'keys').detail, { topic: KEYS, kind: 'keys', source: 'fleet', version: 1, keyId: 'root-1' });

  await r.obs.publish(topic.device('assignment'), doc(alice, 2));
  await waitFor('alice applies', () => r.obs.events('applied').some((e) => e.detail.kind === 'assignment'));
  t.same(r.obs.events('applied').at(-1).detail, { topic: topic.device('assignment'), kind: 'assignment', source: 'device', version: 2, keyId: 'alice' });

  // Out of scope, expired.
  t.match(await rejectedReason(r.obs, topic.group('all', 'assignment'), doc(alice, 3, 'group/all'), 'alice on a group'), /alice" is not scoped for group\/all/);
  t.match(await rejectedReason(r.obs, topic.device('assignment'), doc(bob, 3), 'bob signs an assignment'), /bob" is not scoped for assignment/);
  const bobCmd = sealEnvelope({ id: 'x-1', name: 'restart-player', target, issuedAt: iso(Date.now()), expiresAt: iso(Date.now() + 60_000) }, bob.key, bob.id);
  t.match(await rejectedReason(r.obs, topic.device('cmd'), bobCmd, 'bob commands a device'), /bob" is not scoped for device\/dev-1/);
  t.match(await rejectedReason(r.obs, topic.device('assignment'), doc(carol, 3), 'carol expired'), /carol" expired at/);
  t.equal(r.host.restarts, 0);

  // Stale: the same version with other content, and an older version.
  t.match(await rejectedReason(r.obs, KEYS, keySet(root, 1, []), 'reused version'), /stale version 1 <= 1/);

  // Rotation: version 2 lists dave only. alice is revoked at once; dave works; no restart.
  await r.obs.publish(KEYS, keySet(root, 2, [entry(dave, ['*'], ['assignment', 'override', 'cmd'])]), { retain: true });
  await waitFor('key set 2 applied', () => r.obs.events('applied').some((e) => e.detail.kind === 'keys' && e.detail.version === 2));
  t.match(await rejectedReason(r.obs, topic.device('assignment'), doc(alice, 4), 'alice revoked'), /unknown keyId "alice"/);
  await r.obs.publish(topic.group('all', 'assignment'), doc(dave, 4, 'group/all'));
  await waitFor('dave applies', () => r.obs.events('applied').some((e) => e.detail.keyId === 'dave'));
  t.match(await rejectedReason(r.obs, KEYS, good1, 'the old set replayed'), /stale version 1 <= 2/);
  t.same(await r.store.loadKeySet().then((k) => k?.version), 2, 'kept in the store');

  // A restart with the broker's retained key set gone: the stored set is verified and in force.
  await r.obs.publish(KEYS, '', { retain: true });
  await r.link.stop();
  await r.host.desired?.stop();
  const obs2 = await Observer.connect(t, r.broker.url);
  const link2 = makeLink(t, r.config, r.store, new FakeHost(), EACH_REJECTION);
  await link2.start();
  await waitFor('reconnected', () => obs2.on('status').some((m) => m.json().online === true));
  await obs2.publish(topic.device('assignment'), doc(dave, 5));
  await waitFor('dave still applies after the restart', () => obs2.events('applied').some((e) => e.detail.keyId === 'dave' && e.detail.version === 5));
  t.pass('the stored key set survived the restart');
});

t.test('a document signed by a new key that arrived before its key set is fetched again once the set applies', async (t) => {
  const root = key('root-1');
  const erin = key('erin');
  const r = await rig(t, { security: { rootKeys: [`${root.id}:${root.pub}`] } }, { ...EACH_REJECTION, refetchMs: 100 });
  t.match(await rejectedReason(r.obs, topic.device('assignment'), doc(erin, 7), 'too early', true), /unknown keyId "erin"/);
  await r.obs.publish(KEYS, keySet(root, 1, [entry(erin, ['device/dev-1'], ['assignment'])]), { retain: true });
  const applied = (): boolean => r.obs.events('applied').some((e) => e.detail.keyId === 'erin' && e.detail.version === 7);
  await waitFor('the retained assignment applies after the set', applied);
  t.ok(applied(), 'the document that came before its key set applied once the set did');
});

t.test('config: rootKeys read with assignmentKeys; duplicate ids across both are a config error', async (t) => {
  const { parseConfig, ConfigError } = await import('../agent/config/config.js');
  const a = key('a');
  const b = key('b');
  const base = { deviceId: 'k-1', mqtt: { url: 'mqtt://x' } };
  const c = parseConfig({ ...base, security: { assignmentKeys: [`a:${a.pub}`], rootKeys: [`b:${b.pub}`] } }, '/tmp/c.json');
  t.same([...c.security.rootKeys!.keys()], ['b']);
  const e = t.throws(() => parseConfig({ ...base, heartbeatSec: 1, security: { assignmentKeys: [`a:${a.pub}`, `a:${b.pub}`], rootKeys: [`a:${b.pub}`, 'junk'] } }, '/tmp/c.json')) as InstanceType<typeof ConfigError>;
  t.ok(e instanceof ConfigError);
  t.match(e.problems.find((p) => p.startsWith('security.assignmentKeys.1:')), /duplicate key id "a"/);
  t.match(e.problems.find((p) => p.startsWith('security.rootKeys.0:')), /duplicate key id "a": also in security.assignmentKeys/);
  t.ok(e.problems.some((p) => p.startsWith('security.rootKeys.1:')), 'the bad root key is named');
  t.ok(e.problems.some((p) => p.startsWith('heartbeatSec:')), 'every problem together');
  t.equal(e.problems.length, 4);
});
