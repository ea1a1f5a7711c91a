import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { nextVersion } from '../scripts/signagectl/desired.js';
import { Fleet } from '../scripts/signagectl/watch.js';
import { client, ctl } from './helpers/ctl.js';
import { startBroker } from './helpers/mosquitto.js';
import { tempDir } from './helpers/tmp.js';
import { waitFor } from './helpers/wait.js';

// Round trips against a real mosquitto. `cmd` and `report` talk to a small responder that
// answers per PROTOCOL §7 (response topic + correlation data); the end-to-end test against a
// running agent lives with the agent's tests.

const SHA = 'ab'.repeat(32);


/** The retained payload on a topic (undefined when none), read by a fresh subscriber. */
async function retained(t: Test, url: string, topic: string): Promise<string | undefined> {
  const c = await client(t, url);
  let got: string | undefined;
  let marked = false;
  // The broker queues a topic's retained message when the subscription is made, so one published
  // after the SUBACK arrives after it: once the marker is here, no retained copy is still coming.
  const marker = `test/marker/${Math.random().toString(16).slice(2)}`;
  c.on('message', (tp, p) => {
    if (tp === topic) got = p.toString();
    if (tp === marker) marked = true;
  });
  await c.subscribeAsync([topic, marker], { qos: 1 });
  await c.publishAsync(marker, 'after', { qos: 1 });
  await waitFor('the marker after any retained copy', () => marked);
  await c.endAsync();
  return got;
}

/** A device that answers commands like the agent does (PROTOCOL §7). */
async function responder(t: Test, url: string, id: string, handle: (name: string, args: Record<string, unknown>) => unknown, expiries: unknown[] = []): Promise<string[]> {
  const c = await client(t, url);
  const seen: string[] = [];
  c.on('message', (_topic, payload, packet) => {
    const req = JSON.parse(payload.toString()) as { id: string; name: string; args?: Record<string, unknown>; expiresAt?: unknown };
    seen.push(req.name);
    expiries.push(req.expiresAt);
    let body: Record<string, unknown>;
    try {
      const result = handle(req.name, req.args ?? {});
      body = { id: req.id, ok: true, result };
    } catch (e) {
      body = { id: req.id, ok: false, error: (e as Error).message };
    }
    const topic = packet.properties?.responseTopic ?? `signage/device/${id}/cmd/result`;
    const corr = packet.properties?.correlationData;
    void c.publishAsync(topic, JSON.stringify(body), { qos: 1, ...(corr ? { properties: { correlationData: corr } } : {}) });
  });
  await c.subscribeAsync(`signage/device/${id}/cmd`, { qos: 1 });
  return seen;
}

t.test('assign: validates, lists every problem, publishes retained with the next version', async (t) => {
  const b = await startBroker(t);
  const dir = tempDir(t, 'ctl-');
  const bad = path.join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ campaigns: [{ id: 'c1', media: { url: 'ftp://x', sha256: 'zz' }, timesPerDay: 5, windows: ['25:00-26:00'] }] }));
  const r0 = await ctl(['assign', '--url', b.url, '--device', 'dev-1', '--file', bad]);
  t.equal(r0.code, 2);
  const errs = r0.err.join('\n');
  t.match(errs, /campaigns\.0\.media\.url/);
  t.match(errs, /campaigns\.0\.media\.sha256/);
  t.match(errs, /campaigns\.0\.windows\.0/);

  const file = path.join(dir, 'a.json');
  writeFileSync(file, JSON.stringify({ campaigns: [{ id: 'c1', media: { url: 'https://cdn/x.mp4', sha256: SHA }, timesPerDay: 5 }] }));
  const before = Math.floor(Date.now() / 1000);
  const r1 = await ctl(['assign', '--url', b.url, '--device', 'dev-1', '--file', file]);
  t.equal(r1.code, 0, r1.err.join('\n'));
  t.match(r1.out[0], /published signage\/device\/dev-1\/assignment .*version \d+ \(retained was none\), 1 campaign\(s\): c1/);
  const v1 = (JSON.parse((await retained(t, b.url, 'signage/device/dev-1/assignment'))!) as { version: number }).version;
  t.ok(v1 >= before, 'no retained version: the Unix time in seconds');
  t.same(r1.err, [], 'no warnings for a file of known fields');

  // A misspelt optional field is ignored by the agents (v1.1 §3): published, with a warning.
  const typo = path.join(dir, 'typo.json');
  writeFileSync(typo, JSON.stringify({ campaigns: [{ id: 'c1', media: { url: 'https://cdn/x.mp4', sha256: SHA, codec: 'h264' }, timesPerDay: 5, window: ['06:30-08:30'] }] }));
  const rt = await ctl(['assign', '--url', b.url, '--device', 'dev-9', '--file', typo, '--dry-run']);
  t.equal(rt.code, 0, rt.err.join('\n'));
  t.same(rt.err, [
    'signagectl assign: warning: campaigns.0.media.codec: not a field of the contract; agents will ignore it',
    'signagectl assign: warning: campaigns.0.window: not a field of the contract; agents will ignore it',
  ]);

  const r2 = await ctl(['assign', '--url', b.url, '--device', 'dev-1', '--file', file]);
  const v2 = (JSON.parse((await retained(t, b.url, 'signage/device/dev-1/assignment'))!) as { version: number }).version;
  t.ok(v2 > v1, `always above the retained one (${v2} > ${v1})`);
  t.match(r2.out[0], new RegExp(`version ${v2} \\(retained was ${v1}\\)`));
  writeFileSync(file, JSON.stringify({ version: 4_000_000_000_000, campaigns: [] }));
  const r3 = await ctl(['assign', '--url', b.url, '--group', 'hoan-kiem', '--file', file]);
  t.match(r3.out[0], /group hoan-kiem assignment version 4000000000000/, "the file's higher version is kept");
  t.equal((JSON.parse((await retained(t, b.url, 'signage/group/hoan-kiem/assignment'))!) as { version: number }).version, 4_000_000_000_000);
  t.equal(nextVersion(7, 0, 5000), 8, 'retained + 1 when the clock is behind');
  t.equal(nextVersion(0, 3, 10_000), 10, 'Unix seconds');

  const cfg = path.join(dir, 'ctl.json');
  writeFileSync(cfg, JSON.stringify({ mqtt: { url: b.url, topicPrefix: 'acme' } }));
  const r4 = await ctl(['assign', '--config', cfg, '--device', 'dev-1', '--file', file]);
  t.match(r4.out[0], /published acme\/device\/dev-1\/assignment/, 'topicPrefix from --config');
  const r5 = await ctl(['assign', '--url', b.url, '--device', 'dev-1', '--group', 'g', '--file', file]);
  t.equal(r5.code, 2);
});

t.test('override: set, merge, expiry, clear', async (t) => {
  const b = await startBroker(t);
  const topic = 'signage/device/dev-2/override';
  const now = Date.now();
  const r1 = await ctl(['override', '--url', b.url, '--device', 'dev-2', '--campaign', 'c1', '--times', '20', '--expires', '+6h']);
  t.equal(r1.code, 0, r1.err.join('\n'));
  const doc1 = JSON.parse((await retained(t, b.url, topic))!) as { version: number; campaigns: Record<string, unknown>; expiresAt: string };
  t.ok(doc1.version >= Math.floor(now / 1000));
  t.same(doc1.campaigns, { c1: { timesPerDay: 20 } });
  t.ok(Math.abs(Date.parse(doc1.expiresAt) - (now + 6 * 3600_000)) < 60_000, 'expires in 6 h');
  t.match(doc1.expiresAt, /Z$/, '+6h is published in UTC with its Z (v1.1 §5)');

  // An instant without Z or an offset would be rejected by every agent: refused before publishing.
  const local = await ctl(['override', '--url', b.url, '--device', 'dev-2', '--campaign', 'c1', '--times', '5', '--expires', '2999-09-01T00:00:00']);
  t.equal(local.code, 2);
  t.match(local.err.join('\n'), /--expires: "2999-09-01T00:00:00" must carry Z or a UTC offset/);
  t.equal(JSON.parse((await retained(t, b.url, topic))!).version, doc1.version, 'nothing published');
  const offset = await ctl(['override', '--url', b.url, '--device', 'dev-2', '--campaign', 'c1', '--times', '20', '--expires', '2999-09-01T00:00:00+07:00', '--dry-run']);
  t.equal(offset.code, 0, offset.err.join('\n'));
  t.match(offset.out.join('\n'), /"expiresAt": "2999-09-01T00:00:00\+07:00"/, 'an offset is kept as given');

  const r2 = await ctl(['override', '--url', b.url, '--device', 'dev-2', '--campaign', 'c2', '--windows', '06:30-08:30,11:00-13:00']);
  t.equal(r2.code, 0, r2.err.join('\n'));
  const doc2 = JSON.parse((await retained(t, b.url, topic))!) as { version: number; campaigns: Record<string, unknown>; expiresAt?: string };
  t.ok(doc2.version > doc1.version);
  t.same(doc2.campaigns, { c1: { timesPerDay: 20 }, c2: { windows: ['06:30-08:30', '11:00-13:00'] } }, 'other campaigns kept');
  t.equal(doc2.expiresAt, undefined);

  const bad = await ctl(['override', '--url', b.url, '--device', 'dev-2', '--campaign', 'c1', '--windows', '9-10']);
  t.equal(bad.code, 2);
  t.match(bad.err.join('\n'), /campaigns\.c1\.windows\.0/);

  const r3 = await ctl(['override', '--url', b.url, '--device', 'dev-2', '--clear']);
  t.equal(r3.code, 0);
  t.equal(await retained(t, b.url, topic), undefined, 'retained override removed');
  // The agent remembers the cleared override's version: the next one must be above it.
  const r4 = await ctl(['override', '--url', b.url, '--device', 'dev-2', '--campaign', 'c1', '--times', '3']);
  t.equal(r4.code, 0);
  const doc4 = JSON.parse((await retained(t, b.url, topic))!) as { version: number; campaigns: Record<string, unknown> };
  t.ok(doc4.version > doc2.version, 'not reset to 1 after a clear');
  t.same(doc4.campaigns, { c1: { timesPerDay: 3 } }, 'nothing merged from the cleared one');
});

t.test('cmd and screenshot round-trip through a §7 responder; failures exit 1', async (t) => {
  const b = await startBroker(t);
  const png = Buffer.from('89504e470d0a1a0a0000000d4948445200000001', 'hex');
  const expiries: unknown[] = [];
  const seen = await responder(t, b.url, 'dev-3', (name, args) => {
    if (name === 'ping') return { pong: true };
    if (name === 'screenshot') return { png: png.toString('base64'), bytes: png.length, mime: 'image/png' };
    if (name === 'play-now') return { campaignId: args.campaignId };
    throw new Error(`unknown command ${name}`);
  }, expiries);
  const ping = await ctl(['cmd', '--url', b.url, '--device', 'dev-3', 'ping']);
  t.equal(ping.code, 0, ping.err.join('\n'));
  t.match(JSON.parse(ping.out.join('\n')), { ok: true, result: { pong: true } });

  const play = await ctl(['cmd', '--url', b.url, '--device', 'dev-3', 'play-now', '--args', '{"campaignId":"c9"}']);
  t.match(JSON.parse(play.out.join('\n')), { ok: true, result: { campaignId: 'c9' } });

  const dir = tempDir(t, 'ctl-shot-');
  const out = path.join(dir, 'shot.png');
  const shot = await ctl(['screenshot', '--url', b.url, '--device', 'dev-3', '--out', out]);
  t.equal(shot.code, 0, shot.err.join('\n'));
  t.same(readFileSync(out), png, 'the PNG bytes written');
  t.match(shot.out.join('\n'), /bytes written to/);

  const unknown = await ctl(['cmd', '--url', b.url, '--device', 'dev-3', 'self-destruct']);
  t.equal(unknown.code, 1);
  t.match(unknown.err.join('\n'), /self-destruct failed: unknown command/);
  t.same(seen, ['ping', 'play-now', 'screenshot', 'self-destruct']);
  t.ok(expiries.every((e) => typeof e === 'string' && /T\d\d:\d\d:\d\d(\.\d+)?Z$/.test(e)), `every request's expiresAt carries Z: ${expiries.join(' ')}`);

  const silent = await ctl(['cmd', '--url', b.url, '--device', 'nobody', 'ping', '--timeout', '300ms']);
  t.equal(silent.code, 1);
  t.match(silent.err.join('\n'), /no answer from nobody/);
  const badArgs = await ctl(['cmd', '--url', b.url, '--device', 'dev-3', 'ping', '--args', '[1]']);
  t.equal(badArgs.code, 2);
});

t.test('report: asks every online device, table and CSV', async (t) => {
  const b = await startBroker(t);
  const pub = await client(t, b.url);
  await pub.publishAsync('signage/device/dev-4/status', JSON.stringify({ online: true, session: 3 }), { qos: 1, retain: true });
  await pub.publishAsync('signage/device/dev-5/status', JSON.stringify({ online: false, session: 7 }), { qos: 1, retain: true });
  await responder(t, b.url, 'dev-4', (name, args) => {
    if (name !== 'report') throw new Error('unexpected');
    return {
      date: args.date,
      compliance: [
        { campaignId: 'c1', day: args.date, played: 10, target: 10, onTrack: true },
        { campaignId: 'c,2', day: args.date, played: 3, target: 12, onTrack: false },
      ],
    };
  });
  const csv = await ctl(['report', '--url', b.url, '--date', '2024-08-15', '--csv']);
  t.equal(csv.code, 0, csv.err.join('\n'));
  t.same(csv.out, [
    'device,campaign,date,played,target,onTrack,status',
    'dev-4,c1,2024-08-15,10,10,true,ok',
    'dev-4,"c,2",2024-08-15,3,12,false,ok',
    'dev-5,,2024-08-15,,,,offline',
  ]);
  const table = await ctl(['report', '--url', b.url, '--date', '2024-08-15', '--device', 'dev-4']);
  t.equal(table.code, 0);
  t.match(table.out.join('\n'), /dev-4\s+c,2\s+3\s+12\s+25%\s+NO\s+ok/);
  const bad = await ctl(['report', '--url', b.url, '--date', '2024-02-30']);
  t.equal(bad.code, 2);
});

t.test('watch --once prints the fleet from status and heartbeats', async (t) => {
  const b = await startBroker(t);
  const pub = await client(t, b.url);
  await pub.publishAsync('signage/device/dev-6/status', JSON.stringify({ online: true, session: 1 }), { qos: 1, retain: true });
  await pub.publishAsync('signage/device/dev-7/status', JSON.stringify({ online: false, session: 2 }), { qos: 1, retain: true });
  const beat = JSON.stringify({
    ts: new Date().toISOString(), deviceId: 'dev-6', cpuTempC: 51.2, backlog: 4, clockSynced: true,
    player: { state: 'playing', campaignId: 'ihanoi' },
    compliance: [{ campaignId: 'ihanoi', day: '2024-08-15', played: 4, target: 10, onTrack: false }, { campaignId: 'x', day: '2024-08-15', played: 2, target: 2, onTrack: true }],
  });
  const timer = setInterval(() => void pub.publishAsync('signage/device/dev-6/heartbeat', beat, { qos: 0 }), 100);
  t.teardown(() => clearInterval(timer));
  const r = await ctl(['watch', '--url', b.url, '--once', '--for', '700ms']);
  t.equal(r.code, 0, r.err.join('\n'));
  t.match(r.out[0], /^DEVICE\s+STATE\s+LAST SEEN\s+TEMP\s+PLAYING\s+TODAY\s+BACKLOG\s+CLOCK$/);
  t.match(r.out.join('\n'), /dev-6\s+online\s+\d+s ago\s+51\.2°C\s+ihanoi\s+6\/12 !\s+4\s+synced/);
  t.match(r.out.join('\n'), /dev-7\s+offline/);
  t.match(r.out.at(-1), /2 screen\(s\): 1 online, 0 stale, 1 offline/);
});

t.test('Fleet: stale after 3 missed heartbeats, late Wills ignored, colours only on a TTY', async (t) => {
  const f = new Fleet('signage', 30_000);
  const hb = (id: string, at: number): void => f.update(`signage/device/${id}/heartbeat`, Buffer.from(JSON.stringify({ deviceId: id })), at);
  f.update('signage/device/a/status', Buffer.from(JSON.stringify({ online: true, session: 5 })), 0);
  hb('a', 0);
  hb('a', 10_000);
  hb('b', 0);
  f.update('signage/device/b/status', Buffer.from(JSON.stringify({ online: false, session: 4 })), 1000);
  f.update('signage/device/a/status', Buffer.from(JSON.stringify({ online: false, session: 4 })), 11_000);
  const lines = f.render(45_000);
  t.match(lines.find((l) => l.startsWith('a ')), /stale/, 'learned 10 s interval: 35 s without a beat is stale');
  t.match(lines.find((l) => l.startsWith('b ')), /offline/);
  t.match(f.render(20_000).find((l) => l.startsWith('a ')), /online/, 'the old session\'s Will did not take it offline');
  const colored = f.render(45_000, true);
  t.ok(colored.some((l) => l.startsWith('\x1b[33ma ')), 'stale row yellow');
  t.notOk(lines.some((l) => l.includes('\x1b[')), 'plain text otherwise');
});

t.test('help everywhere; bad usage exits 2', async (t) => {
  for (const c of ['assign', 'override', 'cmd', 'screenshot', 'watch', 'report']) {
    const r = await ctl([c, '--help']);
    t.equal(r.code, 0, c);
    t.match(r.out.join('\n'), new RegExp(`Usage: signagectl ${c}`));
  }
  t.match((await ctl(['--help'])).out.join('\n'), /signagectl assign/);
  t.equal((await ctl(['frobnicate'])).code, 2);
  t.equal((await ctl(['watch', '--bogus'])).code, 2);
  const noBroker = await ctl(['watch', '--once']);
  t.equal(noBroker.code, 2);
  t.match(noBroker.err[0], /give --config FILE or --url URL/);
  const badUrl = await ctl(['watch', '--url', 'http://x']);
  t.match(badUrl.err[0], /url: must be an mqtt/);
});
