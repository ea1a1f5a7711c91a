import { generateKeyPairSync, sign } from 'node:crypto';
import t from 'tap';
import { decodeCommand } from '../agent/link/commands.js';
import { keyIdOf, parseKeyRing } from '../agent/protocol/envelope.js';
import { decodeDesired } from '../agent/link/intake.js';
import { assignment } from './helpers/link-rig.js';

// PROTOCOL v1.1 §3: a field this agent does not know is ignored, a known field of the wrong
// type or range is still rejected. §5: every inbound timestamp carries Z or a UTC offset.

const TARGET = 'device/dev-1';
const bytes = (doc: unknown): Buffer => Buffer.from(JSON.stringify(doc));
const desired = (kind: 'assignment' | 'override', doc: unknown): ReturnType<typeof decodeDesired> => decodeDesired(kind, TARGET, bytes(doc), undefined, Date.now());

t.test('unknown fields at every level of an assignment are ignored, and dropped from the document', async (t) => {
  const a: any = assignment(7, ['c1'], { loop: [{ url: 'file:///srv/loop.mp4', sha256: 'b'.repeat(64), poster: 'x.png' }] });
  a.schedulerHint = { prefer: 'mornings' };
  a.campaigns[0].advertiser = 'iHanoi';
  a.campaigns[0].media.codec = 'h264';
  a.campaigns[0].media.bitrateKbps = 4000;
  const r = desired('assignment', a);
  t.ok(r.ok, `accepted: ${r.ok ? '' : r.reason}`);
  if (!r.ok || 'clear' in r) return;
  const doc = r.doc as any;
  t.equal(doc.version, 7);
  t.equal(doc.campaigns[0].id, 'c1');
  t.equal(doc.campaigns[0].media.sha256, 'a'.repeat(64));
  t.notOk('schedulerHint' in doc, 'top-level unknown field not kept');
  t.notOk('advertiser' in doc.campaigns[0], 'campaign unknown field not kept');
  t.notOk('codec' in doc.campaigns[0].media, 'media unknown field not kept');
  t.notOk('poster' in doc.loop[0], 'loop item unknown field not kept');
});

t.test('a known field of the wrong type or range is still rejected, naming it', async (t) => {
  const cases: [string, (a: any) => void, RegExp][] = [
    ['timesPerDay as a string', (a) => (a.campaigns[0].timesPerDay = '10'), /campaigns\.0\.timesPerDay/],
    ['durationMs negative', (a) => (a.campaigns[0].media.durationMs = -5), /campaigns\.0\.media\.durationMs/],
    ['version as a string', (a) => (a.version = '8'), /version/],
    ['weekdays out of range', (a) => (a.campaigns[0].weekdays = [0]), /campaigns\.0\.weekdays\.0/],
    ['loop item url of the wrong type', (a) => (a.loop = [{ url: 5, sha256: 'b'.repeat(64) }]), /loop\.0\.url/],
  ];
  for (const [name, patch, reason] of cases) {
    const a: any = assignment(8);
    a.futureField = true; // an unknown field never hides a bad known one
    patch(a);
    const r = desired('assignment', a);
    t.notOk(r.ok, `${name}: rejected`);
    if (!r.ok) t.match(r.reason, reason, `${name}: ${r.reason}`);
  }
});

t.test('overrides and commands: unknown fields ignored, nested ones too', async (t) => {
  const o = desired('override', { version: 3, reason: 'Tet', campaigns: { c1: { timesPerDay: 20, note: 'double' } }, expiresAt: '2030-01-01T00:00:00+07:00' });
  t.ok(o.ok, `override accepted: ${o.ok ? '' : o.reason}`);
  if (o.ok && !('clear' in o)) t.same(o.doc, { version: 3, campaigns: { c1: { timesPerDay: 20 } }, expiresAt: '2030-01-01T00:00:00+07:00' });
  const bad = desired('override', { version: 3, campaigns: { c1: { timesPerDay: 'lots', note: 'x' } } });
  t.notOk(bad.ok);
  if (!bad.ok) t.match(bad.reason, /campaigns\.c1\.timesPerDay/);

  const c = decodeCommand(bytes({ id: 'c-1', name: 'ping', priority: 'high', expiresAt: '2030-01-01T00:00:00Z' }), TARGET, undefined, Date.now());
  t.ok(c.ok, `command accepted: ${c.ok ? '' : c.reason}`);
  if (c.ok) t.notOk('priority' in c.doc, 'unknown command field dropped');
  const cb = decodeCommand(bytes({ id: 'c-2', name: 42, priority: 'high' }), TARGET, undefined, Date.now());
  t.notOk(cb.ok);
  if (!cb.ok) t.match(cb.reason, /name/);
});

t.test('a §9 envelope with an extra field is opened; the signed document may carry unknown fields too', async (t) => {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(12);
  const keys = parseKeyRing([raw.toString('base64')])!;
  const doc = Buffer.from(JSON.stringify({ ...assignment(2), target: TARGET, issuedAt: new Date().toISOString(), issuedBy: 'noc-2' }));
  const env = { payload: doc.toString('base64'), sig: sign(null, doc, privateKey).toString('base64'), keyId: keyIdOf(raw), alg: 'ed25519' };
  const r = decodeDesired('assignment', TARGET, bytes(env), keys, Date.now());
  t.ok(r.ok, `accepted: ${r.ok ? '' : r.reason}`);
  const wrongType = decodeDesired('assignment', TARGET, bytes({ ...env, sig: 64 }), keys, Date.now());
  t.notOk(wrongType.ok, 'a known envelope field of the wrong type is still rejected');
  if (!wrongType.ok) t.match(wrongType.reason, /signed envelope required/);
});

t.test('timestamps: Z or a UTC offset, or rejected with a reason', async (t) => {
  const ov = (expiresAt: string): ReturnType<typeof decodeDesired> => desired('override', { version: 3, campaigns: { c1: { timesPerDay: 20 } }, expiresAt });
  for (const ok of ['2024-09-01T00:00:00Z', '2024-09-01T00:00:00+07:00', '2024-09-01T00:00:00.250-03:30']) {
    const r = ov(ok);
    t.ok(r.ok, `override expiresAt ${ok} accepted${r.ok ? '' : `: ${r.reason}`}`);
    const c = decodeCommand(bytes({ id: `c-${ok}`, name: 'ping', expiresAt: ok }), TARGET, undefined, Date.now());
    t.ok(c.ok, `command expiresAt ${ok} accepted${c.ok ? '' : `: ${c.reason}`}`);
  }
  const local = ov('2024-09-01T00:00:00');
  t.notOk(local.ok, 'an override expiresAt without an offset is rejected');
  if (!local.ok) t.match(local.reason, /expiresAt: .*(Z or a UTC offset)/, local.reason);
  const c = decodeCommand(bytes({ id: 'c-9', name: 'ping', expiresAt: '2024-09-01T00:00:00' }), TARGET, undefined, Date.now());
  t.notOk(c.ok, 'a command expiresAt without an offset is rejected');
  if (!c.ok) t.match(c.reason, /expiresAt: .*(Z or a UTC offset)/, c.reason);
  for (const junk of ['2024-09-01', 'tomorrow', '2024-02-30T00:00:00Z', '2024-09-01T00:00:00+0700']) {
    const r = ov(junk);
    t.notOk(r.ok, `${junk} rejected`);
    if (!r.ok) t.match(r.reason, /expiresAt/, r.reason);
  }
});
