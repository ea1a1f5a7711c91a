import t from 'tap';
import { alertsInForce, blockedSpans, liveAlert, nextChangeAt, showingDueAt } from '../agent/alerts/rules.js';
import { layoutText } from '../agent/alerts/text-card.js';
import type { DesiredState } from '../agent/core/desired.js';
import { decodeDesired } from '../agent/link/intake.js';
import { sealEnvelope } from '../agent/protocol/envelope.js';
import { alertDocSchema, formatIssues } from '../agent/protocol/schemas.js';
import { generateKeyPairSync } from 'node:crypto';

// PROTOCOL §10: the alert document and the pure rules of which alert is on screen.

const T0 = Date.parse('2026-12-06T08:00:00Z');
const iso = (ms: number): string => new Date(ms).toISOString();
const H = 3_600_000;
const sha = 'ab'.repeat(32);
const alert = (o: Record<string, unknown> = {}) => ({ version: 1, id: 'flood', media: { url: 'https://cdn.example.vn/a.mp4', sha256: sha }, startsAt: iso(T0), expiresAt: iso(T0 + H), ...o });
const enc = (v: unknown): Uint8Array => Buffer.from(JSON.stringify(v));
const reasonOf = (doc: unknown): string => {
  const r = decodeDesired('alert', 'device/d1', enc(doc), undefined, T0);
  return r.ok ? 'ok' : r.reason;
};

t.test('schema: good alerts pass, bad ones are refused with a reason', async (t) => {
  t.equal(reasonOf(alert()), 'ok', 'media alert');
  t.equal(reasonOf(alert({ media: undefined, text: 'CẢNH BÁO LŨ' })), 'ok', 'text alert');
  t.equal(reasonOf(alert({ repeatEverySec: 300, extra: 'ignored' })), 'ok', 'repeat, and an unknown field is ignored (§3)');
  const { expiresAt: _, ...noExpiry } = alert();
  t.match(reasonOf(noExpiry), /expiresAt: Invalid input: expected string/, 'expiresAt missing');
  t.match(reasonOf(alert({ expiresAt: iso(T0 + 25 * H) })), /expiresAt: must be at most 24 h after startsAt \(is 25\.0 h\)/, '> 24 h');
  t.equal(reasonOf(alert({ expiresAt: iso(T0 + 24 * H) })), 'ok', 'exactly 24 h is allowed');
  t.match(reasonOf(alert({ expiresAt: iso(T0) })), /expiresAt: must be after startsAt/);
  t.match(reasonOf(alert({ text: 'x' })), /media: give exactly one of media/, 'both media and text');
  t.match(reasonOf(alert({ media: undefined })), /media: give exactly one of media/, 'neither');
  t.match(reasonOf(alert({ startsAt: '2026-12-06T15:00:00' })), /startsAt: must carry Z or a UTC offset/, 'instant without offset');
  t.match(reasonOf(alert({ id: 'bad id' })), /id: must match/);
  t.match(reasonOf(alert({ repeatEverySec: 2 })), /repeatEverySec/, 'repeat below 10 s');
  t.match(reasonOf(alert({ version: Math.floor(T0 / 1000) + 2 * 86_400 })), /more than a day ahead/, 'version cap now + 1 day, as assignments');
  t.match(reasonOf(alert({ target: 'device/other' })), /does not match topic target/);
  t.match(reasonOf(alert({ text: ' ', media: undefined })), /text: must not be blank/);
  const r = decodeDesired('alert', 'device/d1', new Uint8Array(), undefined, T0);
  t.same(r, { ok: true, kind: 'alert', clear: true }, 'an empty payload clears (plain mode)');
  const parsed = alertDocSchema.safeParse({ version: 5, clear: true });
  t.ok(parsed.success, 'a signed clear is {version, clear: true}');
  const bad = alertDocSchema.safeParse({ version: 5, clear: false });
  t.notOk(bad.success);
  if (!bad.success) t.ok(formatIssues(bad.error).length > 0);
});

t.test('signed mode: alert kind in the key scope; fleet target; unsigned empty refused', async (t) => {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const ring = new Map([['op', publicKey]]);
  const signed = (doc: unknown, _target: string): Uint8Array => Buffer.from(sealEnvelope(doc, privateKey, 'op'));
  const ok = decodeDesired('alert', 'fleet', signed(alert({ target: 'fleet', issuedAt: iso(T0) }), 'fleet'), ring, T0);
  t.equal(ok.ok, true, 'a signed fleet alert names target "fleet"');
  const wrong = decodeDesired('alert', 'fleet', signed(alert({ target: 'device/d1', issuedAt: iso(T0) }), 'fleet'), ring, T0);
  t.match(wrong.ok ? '' : wrong.reason, /does not match topic target "fleet"/);
  const empty = decodeDesired('alert', 'device/d1', new Uint8Array(), ring, T0);
  t.equal(empty.ok, false, 'signed screens refuse an unsigned empty payload');
  const clear = decodeDesired('alert', 'device/d1', signed({ version: 9, clear: true, target: 'device/d1', issuedAt: iso(T0) }, 'device/d1'), ring, T0);
  t.match(clear, { ok: true, kind: 'alert', doc: { version: 9, clear: true } }, 'a signed clear');
});

function state(...alerts: Array<{ source: string; doc: Record<string, unknown> | null }>): DesiredState {
  return { assignments: [], overrides: [], alerts: alerts.map((a, i) => ({ source: a.source, version: i + 1, doc: a.doc as never, appliedAt: T0 })) };
}

t.test('rules: newest startsAt wins, the others wait their turn until they expire', async (t) => {
  const s = state(
    { source: 'fleet', doc: alert({ id: 'storm', startsAt: iso(T0), expiresAt: iso(T0 + 3 * H) }) },
    { source: 'group/hk', doc: alert({ id: 'road', startsAt: iso(T0 + H), expiresAt: iso(T0 + 2 * H) }) },
    { source: 'group/gone', doc: alert({ id: 'other', startsAt: iso(T0 + H), expiresAt: iso(T0 + 2 * H) }) },
    { source: 'device', doc: { version: 4, clear: true } },
    { source: 'group/all', doc: null },
  );
  const inForce = alertsInForce(s, ['all', 'hk'], T0 - 1);
  t.same(inForce.map((a) => a.campaignId), ['alert:road', 'alert:storm'], 'cleared, and groups not configured, are not in force; newest start first');
  t.equal(liveAlert(inForce, T0 - 1), undefined, 'nothing before the first start (pre-staged)');
  t.equal(liveAlert(inForce, T0)?.doc.id, 'storm');
  t.equal(liveAlert(inForce, T0 + H)?.doc.id, 'road', 'the newer one takes over at its start');
  t.equal(liveAlert(inForce, T0 + 2 * H - 1)?.doc.id, 'road');
  t.equal(liveAlert(inForce, T0 + 2 * H)?.doc.id, 'storm', 'the older one comes back when the newer one expires');
  t.equal(liveAlert(inForce, T0 + 3 * H), undefined, 'ends at expiresAt exactly');
  t.equal(nextChangeAt(inForce, T0 - 1), T0);
  t.equal(nextChangeAt(inForce, T0), T0 + H);
  t.equal(nextChangeAt(inForce, T0 + H), T0 + 2 * H);
  t.equal(nextChangeAt(inForce, T0 + 2 * H), T0 + 3 * H);
  t.equal(nextChangeAt(inForce, T0 + 3 * H), undefined);
  t.same(alertsInForce(s, ['all', 'hk'], T0 + 3 * H), [], 'expired alerts drop out');
  const tie = alertsInForce(state({ source: 'fleet', doc: alert({ id: 'f' }) }, { source: 'device', doc: alert({ id: 'd' }) }), [], T0);
  t.equal(liveAlert(tie, T0)?.doc.id, 'd', 'equal starts: device over fleet');
});

t.test('rules: showings and the time campaigns plan around', async (t) => {
  const [loop] = alertsInForce(state({ source: 'device', doc: alert() }), [], T0);
  t.same(blockedSpans([loop!], T0 - H, () => 10_000, () => undefined), [{ start: T0, end: T0 + H }], 'a looping alert blocks its whole span');
  t.same(blockedSpans([loop!], T0 + 10 * 60_000, () => 10_000, () => undefined), [{ start: T0 + 10 * 60_000, end: T0 + H }], 'from now on');
  const [rep] = alertsInForce(state({ source: 'device', doc: alert({ repeatEverySec: 900 }) }), [], T0);
  t.equal(showingDueAt(rep!, undefined), T0, 'first showing at startsAt');
  t.equal(showingDueAt(rep!, T0 + 5000), T0 + 5000 + 900_000, 'then every repeatEverySec after the last one started');
  t.same(blockedSpans([rep!], T0, () => 20_000, () => undefined), [0, 1, 2, 3].map((i) => ({ start: T0 + i * 900_000, end: T0 + i * 900_000 + 20_000 })), 'a repeating alert blocks its showings only: campaigns play in between');
});

t.test('text layout: NFC, wrapped, large', async (t) => {
  const nfd = 'CẢNH BÁO'.normalize('NFD');
  const { lines, fontSize } = layoutText(nfd);
  t.same(lines, ['CẢNH BÁO'.normalize('NFC')], 'decomposed input is drawn precomposed');
  t.ok(fontSize >= 100, `a short text is drawn large (${fontSize} px on 1080)`);
  const long = layoutText('Đường Hoàng Diệu ngập sâu, xin tránh khu vực này. '.repeat(6));
  t.ok(long.lines.length > 3 && long.fontSize >= 40, `a long text wraps (${long.lines.length} lines at ${long.fontSize} px)`);
});
