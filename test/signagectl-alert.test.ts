import { writeFileSync } from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import t from 'tap';
import { decodeDesired } from '../agent/link/intake.js';
import { parseKeyRing } from '../agent/protocol/envelope.js';
import { ctl } from './helpers/ctl.js';
import { startBroker } from './helpers/mosquitto.js';
import { tempDir } from './helpers/tmp.js';

// `signagectl alert`: what an operator types, checked against the agent's own decoder.

async function retained(url: string, topic: string): Promise<Buffer | undefined> {
  const c = await mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 0 });
  let got: Buffer | undefined;
  let marked = false;
  const marker = `test/marker/${Math.random().toString(16).slice(2)}`;
  c.on('message', (tp, p) => {
    if (tp === topic) got = p;
    if (tp === marker) marked = true;
  });
  await c.subscribeAsync([topic, marker], { qos: 1 });
  await c.publishAsync(marker, 'after', { qos: 1 });
  while (!marked) await new Promise((r) => setTimeout(r, 10));
  await c.endAsync();
  return got;
}

t.test('bad alerts are refused before anything is sent, exit 2 with the reason', async (t) => {
  const url = ['--url', 'mqtt://127.0.0.1:1'];
  const cases: Array<[string[], RegExp]> = [
    [['--device', 'd1', '--text', 'x', '--expires', '+30h'], /expiresAt: must be at most 24 h after startsAt \(is 30\.0 h\)/],
    [['--device', 'd1', '--text', 'x'], /--expires is required/],
    [['--device', 'd1', '--text', 'x', '--file', 'a.mp4', '--expires', '+1h'], /exactly one of --text, --file or --media-url/],
    [['--device', 'd1', '--media-url', 'https://x/a.mp4', '--expires', '+1h'], /--media-url needs --sha256/],
    [['--fleet', '--group', 'g', '--text', 'x', '--expires', '+1h'], /exactly one of --device ID, --group G or --fleet/],
    [['--fleet', '--text', 'x', '--starts', '2026-12-06T18:00:00', '--expires', '+1h'], /--starts: .* must carry Z or a UTC offset/],
    [['--fleet', '--clear', '--text', 'x'], /--clear takes no/],
    [['--device', 'd1', '--text', 'x', '--expires', '+1h', '--repeat-every', '1.5'], /--repeat-every/],
  ];
  for (const [args, why] of cases) {
    const r = await ctl(['alert', ...url, ...args]);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.err.join('\n'), why);
  }
  t.match((await ctl(['alert', '--help'])).out.join('\n'), /Usage: signagectl alert/);
});

t.test('publish, pre-stage, clear; signed clear decodes as a clear on a signed screen', async (t) => {
  const broker = await startBroker(t);
  const dir = tempDir(t, 'ctl-alert-');
  const clip = path.join(dir, 'a.mp4');
  writeFileSync(clip, 'not really a clip');
  const now = Date.now();
  const r = await ctl(['alert', '--url', broker.url, '--group', 'hk', '--file', clip, '--starts', '+10m', '--expires', '+1h', '--id', 'closure']);
  t.equal(r.code, 0, r.err.join('\n'));
  const doc = JSON.parse(String(await retained(broker.url, 'signage/group/hk/alert'))) as Record<string, unknown>;
  t.match(doc, { id: 'closure', media: { url: `file://${clip}`, sha256: /^[0-9a-f]{64}$/ } });
  t.ok((doc.version as number) >= Math.floor(now / 1000), 'version from Unix seconds, as assign');
  t.equal(Date.parse(String(doc.expiresAt)) - Date.parse(String(doc.startsAt)), 3_600_000, '--expires +1h counts from --starts');
  t.ok(Date.parse(String(doc.startsAt)) >= now + 600_000 - 1000, 'pre-staged 10 min ahead');
  const decoded = decodeDesired('alert', 'group/hk', Buffer.from(JSON.stringify(doc)), undefined, Date.now());
  t.equal(decoded.ok, true, 'the agent takes what signagectl sent');

  const fleet = await ctl(['alert', '--url', broker.url, '--fleet', '--text', 'CẢNH BÁO', '--expires', '+2h']);
  t.equal(fleet.code, 0, fleet.err.join('\n'));
  t.match(JSON.parse(String(await retained(broker.url, 'signage/fleet/alert'))), { text: 'CẢNH BÁO' });
  const cleared = await ctl(['alert', '--url', broker.url, '--fleet', '--clear']);
  t.equal(cleared.code, 0);
  t.equal(await retained(broker.url, 'signage/fleet/alert'), undefined, 'the empty payload removed the retained alert');

  const kg = await ctl(['keygen', '--out', dir, '--id', 'op1']);
  t.equal(kg.code, 0, kg.err.join('\n'));
  const ring = parseKeyRing([kg.out[0]!])!;
  const sc = await ctl(['alert', '--url', broker.url, '--group', 'hk', '--clear', '--key', path.join(dir, 'op1.key')]);
  t.equal(sc.code, 0, sc.err.join('\n'));
  const env = await retained(broker.url, 'signage/group/hk/alert');
  const d = decodeDesired('alert', 'group/hk', env!, ring, Date.now());
  t.match(d, { ok: true, kind: 'alert', doc: { clear: true, target: 'group/hk' }, keyId: 'op1' }, 'a signed clear');
  t.ok(d.ok && 'doc' in d && d.doc.version > (doc.version as number), 'with the next version, above the alert it clears');
});
