// The NOC page's HTTP face without a browser: the token off loopback (config and every route),
// the Host check on loopback, the CSV download against the report off the same archive, /metrics
// from a metrics source, the screenshot POST's guard, and the tile states.
import { request } from 'node:http';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { deviceTopic, encode, heartbeat, statusOffline, statusOnline } from '../agent/protocol/index.js';
import { FleetConfigError, parseFleetConfig } from '../fleet/config.js';
import { toCsv } from '../fleet/report/format.js';
import { compliance } from '../fleet/report/report.js';
import { stateOf, tiles } from '../fleet/http/views.js';
import { silentLogger } from '../fleet/log.js';
import { FleetService } from '../fleet/service.js';
import { fleetConfig, fleetStage, plays, publishPlays } from './helpers/fleet-rig.js';
import { startBroker } from './helpers/mosquitto.js';
import { tempDir } from './helpers/tmp.js';
import { waitFor } from './helpers/wait.js';

interface Res { status: number; headers: Record<string, string | string[] | undefined>; body: string }

function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      // An event stream never ends: its first bytes are enough.
      res.on('data', (d: string) => { body += d; if (res.headers['content-type']?.startsWith('text/event-stream')) res.destroy(); });
      res.on('close', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('config: a non-loopback bind without tokenFile is an error, reported with the others', async (t) => {
  const base = { db: 'a.db', mqtt: { url: 'mqtt://127.0.0.1:1883', clientId: 'i-1' } };
  const e = (() => { try { parseFleetConfig({ ...base, batch: { maxRows: 0 }, http: { bind: '0.0.0.0', port: 8080 } }, '/etc/fleet'); } catch (err) { return err; } })();
  t.ok(e instanceof FleetConfigError);
  const problems = (e as FleetConfigError).problems.join('\n');
  t.match(problems, /http\.tokenFile: required when bind \(0\.0\.0\.0\) is not a loopback address/);
  t.match(problems, /batch\.maxRows/, 'and the other problem, at once');
  const ok = parseFleetConfig({ ...base, http: { bind: '0.0.0.0', tokenFile: 'noc.token' } }, '/etc/fleet');
  t.same(ok.http, { bind: '0.0.0.0', port: 8080, tokenFile: '/etc/fleet/noc.token', staleAfterSec: 120, commandTimeoutSec: 20 });
  for (const bind of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) t.ok(parseFleetConfig({ ...base, http: { bind } }, '/').http, `${bind} needs no token`);
  t.equal(parseFleetConfig(base, '/').http, undefined, 'no http block: no page');
});

t.test('off loopback: every route wants the token (Bearer, or the cookie ?token= sets)', async (t) => {
  const broker = await startBroker(t);
  const dir = tempDir(t, 'noc-token-');
  const token = 'a-token-of-thirty-two-characters';
  writeFileSync(path.join(dir, 'noc.token'), `${token}\n`);
  const metrics = { contentType: 'text/plain; version=0.0.4; charset=utf-8', render: async () => 'signage_fleet_test 1\n' };
  const f = new FleetService(fleetConfig(dir, broker.url, 'ingest-tok', { http: { bind: '0.0.0.0', port: 0, tokenFile: 'noc.token' } }), silentLogger(), { metrics });
  await f.start();
  t.teardown(() => f.stop());
  const base = `http://127.0.0.1:${f.http!.port}`;
  for (const p of ['/', '/screen?id=x', '/report', '/static/grid.js', '/api/grid', '/api/report.csv', '/api/events', '/metrics', '/no-such']) {
    t.equal((await get(`${base}${p}`)).status, 401, `${p} without a token`);
    t.equal((await get(`${base}${p}`, { authorization: 'Bearer a-token-of-thirty-two-characterZ' })).status, 401, `${p} with a wrong token`);
    t.equal((await get(`${base}${p}`, { cookie: 'noc_token=nope' })).status, 401, `${p} with a wrong cookie`);
  }
  t.equal((await get(`${base}/?token=wrong-token-wrong-token`)).status, 401, 'a wrong ?token=');
  const grid = await get(`${base}/api/grid`, { authorization: `Bearer ${token}` });
  t.equal(grid.status, 200);
  t.same(JSON.parse(grid.body).tiles, [], 'an empty archive');
  const m = await get(`${base}/metrics`, { authorization: `Bearer ${token}` });
  t.equal(m.status, 200);
  t.equal(m.headers['content-type'], metrics.contentType);
  t.equal(m.body, 'signage_fleet_test 1\n', 'GET /metrics serves the metrics source');

  const open = await get(`${base}/report?from=2026-12-01&token=${token}`);
  t.equal(open.status, 303, '?token= redirects');
  t.equal(open.headers.location, '/report?from=2026-12-01', 'to the same page without the token');
  const cookie = String(open.headers['set-cookie']);
  t.match(cookie, /^noc_token=a-token-of-thirty-two-characters; HttpOnly; SameSite=Strict; Path=\//);
  const page = await get(`${base}/report?from=2026-12-01`, { cookie: cookie.split(';')[0]! });
  t.equal(page.status, 200, 'the cookie opens the page');
  t.match(page.headers['content-security-policy'], /default-src 'none'; script-src 'self'/);
  t.equal(page.headers['x-content-type-options'], 'nosniff');
  const sse = await get(`${base}/api/events`, { cookie: cookie.split(';')[0]! });
  t.equal(sse.status, 200, 'the event stream with the cookie');
  t.match(sse.body, /^retry: 2000/);
});

t.test('loopback without a token: a foreign Host is refused (DNS rebinding), POST needs the page header', async (t) => {
  const { fleet } = await fleetStage(t, 'ingest-host', { http: { port: 0 } });
  const base = `http://127.0.0.1:${fleet.http!.port}`;
  t.equal((await get(`${base}/api/grid`)).status, 200);
  t.equal((await get(`${base}/api/grid`, { host: `localhost:${fleet.http!.port}` })).status, 200);
  t.equal((await get(`${base}/api/grid`, { host: 'evil.example' })).status, 421);
  t.equal((await get(`${base}/api/screens/x/screenshot`, {}, 'POST')).status, 403, 'a cross-site form post cannot set x-noc-request');
  t.equal((await get(`${base}/api/screens/nobody/screenshot`, { 'x-noc-request': '1' }, 'POST')).status, 404, 'an unknown screen');
  t.equal((await get(`${base}/api/screens/%E0%A4%A`)).status, 400);
  t.equal((await get(`${base}/api/report?from=2026-13-01`)).status, 400);
  t.equal((await get(`${base}/api/report?from=2026-01-01&to=2026-12-31`)).status, 400, 'at most 93 days');
  t.equal((await get(`${base}/api/grid`, {}, 'DELETE')).status, 405);
});

t.test('CSV download: the report off the archive, as a file', async (t) => {
  const { fleet, screen } = await fleetStage(t, 'ingest-csv', { http: { port: 0 }, groups: { 'district-1': ['csv-1', 'csv-2'] } });
  const D = '2026-12-05';
  await publishPlays(screen, plays('csv-1', 'csv-1-store', [1, 2, 3], { day: D, target: 3 }));
  await publishPlays(screen, plays('csv-2', 'csv-2-store', [1], { day: D, target: 3 }));
  await publishPlays(screen, plays('csv-2', 'csv-2-store', [2], { day: D, target: 3, outcome: 'failed' }));
  await waitFor('five plays archived', () => fleet.batcher.totals.plays >= 5);
  const r = await get(`http://127.0.0.1:${fleet.http!.port}/api/report.csv?from=${D}&to=${D}`);
  t.equal(r.status, 200);
  t.equal(r.headers['content-type'], 'text/csv; charset=utf-8');
  t.equal(r.headers['content-disposition'], `attachment; filename="compliance-${D}-${D}.csv"`);
  t.equal(r.body, toCsv(await fleet.archive.read((q) => compliance(q, { from: D, to: D }))), 'the same bytes as signage-fleet report --csv');
  const lines = r.body.split('\n');
  t.ok(lines.includes(`${D},csv-1,district-1,spot,3,3,true,3,reported`), 'csv-1 met 3/3');
  t.ok(lines.includes(`${D},csv-2,district-1,spot,1,3,false,2,reported`), 'csv-2: one completed of 3 (the screen counted 2, one failed)');
  t.ok(lines.includes(`${D},district-1,spot,2,1,0.5`), 'half of district-1 met it');
  const g = await get(`http://127.0.0.1:${fleet.http!.port}/api/report.csv?from=${D}&group=nobody`);
  t.equal(g.body, 'day,deviceId,groups,campaignId,played,target,met,reported,source\n\nday,group,campaignId,screens,met,share\n', 'a group with no screens: headers only');
});

t.test('tile states: Will → offline, old heartbeat → stale, display.power standby → standby', async (t) => {
  const { fleet, screen } = await fleetStage(t, 'ingest-states', { http: { port: 0, staleAfterSec: 30 } });
  const now = Date.now();
  const hb = (id: string, at: number): Promise<unknown> => screen.publishAsync(deviceTopic('signage', id, 'heartbeat'),
    encode('heartbeat', heartbeat({ now: at, deviceId: id, bootedAt: at - 60_000, backlog: 2, fields: { storeId: `${id}-s`, cpuTempC: 51.5 } })), { qos: 0 });
  const status = (id: string, online: boolean): Promise<unknown> => screen.publishAsync(deviceTopic('signage', id, 'status'),
    encode('status', online ? statusOnline({ session: 1, storeId: `${id}-s`, agentVersion: '0.1.0', bootedAt: now, applied: { groups: {}, overrides: { groups: {} } } }) : statusOffline(1)), { qos: 1, retain: true });
  await status('st-on', true); await hb('st-on', now);
  await status('st-old', true); await hb('st-old', now - 120_000);
  await status('st-off', true); await hb('st-off', now); await status('st-off', false);
  await waitFor('three screens archived', async () => {
    const g = JSON.parse((await get(`http://127.0.0.1:${fleet.http!.port}/api/grid`)).body) as { tiles: Array<{ deviceId: string; state: string }> };
    return g.tiles.length === 3 && g.tiles.find((x) => x.deviceId === 'st-off')?.state === 'offline';
  });
  const g = JSON.parse((await get(`http://127.0.0.1:${fleet.http!.port}/api/grid`)).body) as { counts: Record<string, number>; tiles: Array<Record<string, unknown>> };
  t.same(g.tiles.map((x) => [x.deviceId, x.state]), [['st-off', 'offline'], ['st-old', 'stale'], ['st-on', 'online']]);
  t.same(g.counts, { total: 3, online: 1, stale: 1, standby: 0, offline: 1 });
  t.match(g.tiles[2], { cpuTempC: 51.5, backlog: 2, storeId: 'st-on-s', seqMissing: 0, storeReplaced: null });
  const many = [...Array(501).keys()].map((i) => `nobody-${i}`).concat('st-on');
  t.same((await fleet.archive.read((q) => tiles(q, now, 30, many))).map((x) => x.deviceId), ['st-on'], 'a live update for 502 ids (the full read) keeps only those');
  t.same((await fleet.archive.read((q) => tiles(q, now, 30, ['st-old', 'nobody']))).map((x) => x.deviceId), ['st-old'], 'and for a few (the IN list)');
  // §11 display.power: the archive keeps the raw heartbeat, the page reads it when present.
  const fresh = new Date(now).toISOString();
  t.same(stateOf({ status_online: 1, heartbeat_at: fresh }, { display: { power: 'standby' } }, now, 30), { state: 'standby', reason: 'schedule' });
  t.same(stateOf({ status_online: 1, heartbeat_at: fresh }, { display: 'connected' }, now, 30), { state: 'online', reason: 'heartbeat' }, 'an HDMI state string is not a power state');
  t.same(stateOf({ status_online: 1, heartbeat_at: new Date(now - 31_000).toISOString() }, { display: { power: 'standby' } }, now, 30).state, 'stale', 'a silent screen in standby is still stale');
  t.same(stateOf({ status_online: null, heartbeat_at: null }, null, now, 30), { state: 'offline', reason: 'no-status' });
});

t.test('a batch of dropped messages only does not stall the batcher (the NOC tests\' probe found it)', async (t) => {
  const { Batcher } = await import('../fleet/ingest/batcher.js');
  const written: number[] = [];
  const b = new Batcher(async (items) => { written.push(items.length); return { plays: 0, duplicates: 0, events: 0, heartbeats: 0, statuses: 0, gapsOpened: 0, storesReplaced: 0 }; }, { maxRows: 10, maxDelayMs: 0 }, silentLogger());
  let acked = 0;
  b.add({ ack: () => { acked++; } });
  await waitFor('the item-less batch acked', () => acked === 1);
  b.add({ item: { kind: 'event', deviceId: 'd', event: { ts: new Date().toISOString(), type: 'x' }, raw: '{}' } as never, ack: () => { acked++; } });
  await waitFor('the next batch written', () => written.length === 1 && acked === 2);
  await b.drain();
  t.same(written, [1]);
});

t.test('serve without a metrics dependency: /metrics is the service\'s own FleetMetrics over its archive and ingest', async (t) => {
  const { fleet, screen } = await fleetStage(t, 'ingest-metrics', { http: { port: 0 } });
  await publishPlays(screen, plays('scr-m', 'store-m', [1, 2, 3]));
  await waitFor('three plays archived', async () => (await fleet.archive.read((q) => q.get<{ n: number }>('SELECT COUNT(*) AS n FROM plays')))?.n === 3);
  const m = await get(`http://127.0.0.1:${fleet.http!.port}/metrics`);
  t.equal(m.status, 200);
  t.match(m.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  t.match(m.body, /^signage_plays_total\{device="scr-m",outcome="completed"\} 3$/m, 'the archive\'s plays, per device and outcome');
  t.match(m.body, /^signage_ingest_messages_received_total \d+$/m, 'this process\'s ingest counters');
});
