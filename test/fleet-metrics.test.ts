// signage-fleet's Prometheus side: /metrics rendered from a real archive (filled by the real ingest
// off a real mosquitto, and by Archive.write for what today's ingest cannot carry yet) passes
// `promtool check metrics` and says what the archive holds; the alert rules pass `promtool check
// rules` and their `promtool test rules` cases; the Grafana dashboard uses only exported metrics.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { deviceTopic, encode, heartbeat, statusOnline, type Heartbeat } from '../agent/protocol/index.js';
import { Archive } from '../fleet/archive/archive.js';
import type { Item } from '../fleet/ingest/decode.js';
import { silentLogger } from '../fleet/log.js';
import { FleetMetrics } from '../fleet/metrics/metrics.js';
import { count, fleetStage, plays, publishPlays } from './helpers/fleet-rig.js';
import { tempDir } from './helpers/tmp.js';
import { waitFor } from './helpers/wait.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const D = '2026-12-05';
const NOW = Date.parse(`${D}T10:00:00Z`);
const MiB = 1_048_576;

/** The exposition text as `name{labels}` → value (labels in prom-client's order: labelNames). */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/** Metric names with a # TYPE line (also those with no series at the moment). */
const names = (text: string): Set<string> => new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));

function promtool(args: string[], input?: string): { status: number | null; out: string } {
  const r = spawnSync('promtool', args, { input, encoding: 'utf8', cwd: repo });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

const hbFields = (o: Partial<Heartbeat> = {}): Heartbeat['throttled'] & object => ({
  raw: '0x50000', underVoltageNow: false, freqCappedNow: false, throttledNow: false, softTempLimitNow: false,
  underVoltageOccurred: true, freqCappedOccurred: false, throttledOccurred: true, softTempLimitOccurred: false, ...(o.throttled ?? {}),
});

t.test('metrics off a real ingest: promtool check metrics passes and every value is the archive', async (t) => {
  const groups = { 'hoan-kiem': ['hn-1', 'hn-quiet', 'hn-never'], 'ba-dinh': ['hn-1'] };
  const { fleet, screen } = await fleetStage(t, 'ingest-m', { groups });
  const pub = (id: string, kind: 'status' | 'heartbeat' | 'event', doc: unknown, retain = false): Promise<unknown> =>
    screen.publishAsync(deviceTopic('signage', id, kind), encode(kind, doc as never), { qos: kind === 'heartbeat' ? 0 : 1, retain });
  const applied = { groups: {}, overrides: { groups: {} } };

  // hn-1: online, heartbeat 30 s ago; plays 1, 2, 3, 5 completed and 6 interrupted (4 is lost).
  await pub('hn-1', 'status', statusOnline({ session: 1, storeId: 'store-1', agentVersion: '0.1.0', bootedAt: NOW - 3600_000, applied }), true);
  await publishPlays(screen, plays('hn-1', 'store-1', [1, 2, 3, 5], { target: 10 }));
  await publishPlays(screen, plays('hn-1', 'store-1', [6], { target: 10, outcome: 'interrupted' }));
  await pub('hn-1', 'heartbeat', heartbeat({
    now: NOW - 30_000, deviceId: 'hn-1', bootedAt: NOW - 3600_000, backlog: 4,
    fields: { storeId: 'store-1', cpuTempC: 61.5, diskFreeMB: 2048, throttled: hbFields(), player: { state: 'playing', campaignId: 'spot', url: null },
      compliance: [{ campaignId: 'spot', day: D, played: 4, target: 10, onTrack: false }] },
  }));
  // Two output-suspect events: one within the hour, one before it.
  await pub('hn-1', 'event', { ts: new Date(NOW - 300_000).toISOString(), type: 'output-suspect', detail: { reason: 'black' } });
  await pub('hn-1', 'event', { ts: new Date(NOW - 7200_000).toISOString(), type: 'output-suspect', detail: { reason: 'frozen' } });
  // hn-quiet: online by its retained status, but its last heartbeat is 10 minutes old; mpv down.
  await pub('hn-quiet', 'status', statusOnline({ session: 4, storeId: 'store-q', agentVersion: '0.1.0', bootedAt: NOW - 86_400_000, applied }), true);
  await pub('hn-quiet', 'heartbeat', heartbeat({ now: NOW - 600_000, deviceId: 'hn-quiet', bootedAt: NOW - 86_400_000, backlog: 0, fields: { storeId: 'store-q', player: { state: 'down', campaignId: null, url: null } } }));
  // Hostile: an eventId that would put its own text into a label value, and a spoofed play.
  const [evil] = plays('hn-1', 'store-1', [900]);
  await screen.publishAsync(deviceTopic('signage', 'hn-1', 'play'), JSON.stringify({ ...evil, eventId: 'evil-label-1:x' }), { qos: 1 });
  await screen.publishAsync(deviceTopic('signage', 'hn-1', 'play'), encode('play', plays('hn-2', 'x', [1])[0]!), { qos: 1 });
  // hn-swap: an SD card replaced: plays from a second store.
  await publishPlays(screen, plays('hn-swap', 'store-a', [1, 2]));
  await waitFor('the first store archived', async () => (await fleet.archive.read((q) => count(q, "SELECT COUNT(*) AS n FROM plays WHERE device_id = 'hn-swap'"))) === 2);
  await publishPlays(screen, plays('hn-swap', 'store-b', [1], { outcome: 'failed' }));

  await waitFor('everything archived', () => fleet.archive.read(async (q) =>
    (await count(q, 'SELECT COUNT(*) AS n FROM plays')) === 8 && (await count(q, 'SELECT COUNT(*) AS n FROM events')) === 2
    && (await count(q, 'SELECT COUNT(*) AS n FROM devices WHERE heartbeat_at IS NOT NULL')) === 2
    && (await count(q, 'SELECT COUNT(*) AS n FROM devices WHERE status_online = 1')) === 2 && fleet.ingest.counters.bad >= 3), 20_000);

  const metrics = new FleetMetrics(fleet.archive, { now: () => NOW, ingest: fleet.ingest, batcher: fleet.batcher });
  t.match(metrics.contentType, /^text\/plain; version=0\.0\.4/, 'the Prometheus text format');
  const text = await metrics.render();
  const check = promtool(['check', 'metrics'], text);
  t.equal(check.status, 0, `promtool check metrics: ${check.out || 'clean'}`);
  t.equal(check.out.trim(), '', 'no lint findings');

  const s = samples(text);
  const v = (k: string): number | undefined => s.get(k);
  // Expected values from the archive itself, then from what the screens sent.
  const sql = <R>(q: string): Promise<R[]> => fleet.archive.read((x) => x.all<R>(q));
  for (const r of await sql<{ device_id: string; outcome: string; n: number }>('SELECT device_id, outcome, COUNT(*) AS n FROM plays GROUP BY device_id, outcome')) {
    t.equal(v(`signage_plays_total{device="${r.device_id}",outcome="${r.outcome}"}`), r.n, `plays_total ${r.device_id} ${r.outcome} = archive`);
  }
  t.equal(v('signage_plays_total{device="hn-1",outcome="completed"}'), 4);
  t.equal(v('signage_plays_total{device="hn-1",outcome="failed"}'), 0, 'every outcome has a series (a first failure is an increase)');
  for (const r of await sql<{ device_id: string; n: number }>('SELECT device_id, SUM(hi - lo + 1) AS n FROM seq_gaps GROUP BY device_id')) {
    t.equal(v(`signage_device_seq_missing{device="${r.device_id}"}`), r.n, `seq_missing ${r.device_id} = archive`);
  }
  t.equal(v('signage_device_seq_missing{device="hn-1"}'), 1, 'seq 4 is missing');
  t.equal(v('signage_device_store_replaced_total{device="hn-swap"}'), 1, 'one store change');
  t.equal(v('signage_device_store_replaced_total{device="hn-1"}'), 0);

  t.equal(v('signage_device_up{device="hn-1"}'), 1, 'online with a fresh heartbeat');
  t.equal(v('signage_device_up{device="hn-quiet"}'), 0, 'online status but a heartbeat 600 s old (stale after 120 s)');
  t.equal(v('signage_device_up{device="hn-never"}'), 0, 'in the groups map, never seen: down');
  t.equal(v('signage_device_up{device="hn-swap"}'), 0, 'plays but no status');
  t.equal(v('signage_device_last_heartbeat_age_seconds{device="hn-1"}'), 30);
  t.equal(v('signage_device_last_heartbeat_age_seconds{device="hn-quiet"}'), 600);
  t.equal(v('signage_device_last_heartbeat_age_seconds{device="hn-never"}'), undefined, 'no heartbeat, no age');
  t.equal(v('signage_device_backlog{device="hn-1"}'), 4);
  t.equal(v('signage_device_cpu_temp_celsius{device="hn-1"}'), 61.5);
  t.equal(v('signage_device_cpu_temp_celsius{device="hn-quiet"}'), undefined, 'absent in the heartbeat, absent here');
  t.equal(v('signage_device_disk_free_bytes{device="hn-1"}'), 2048 * MiB);
  t.equal(v('signage_device_throttled{device="hn-1",condition="under_voltage"}'), 0);
  t.equal(v('signage_device_throttled_since_boot{device="hn-1",condition="under_voltage"}'), 1);
  t.equal(v('signage_device_throttled_since_boot{device="hn-1",condition="throttled"}'), 1);
  t.equal(v('signage_device_throttled_since_boot{device="hn-1",condition="freq_capped"}'), 0);
  t.equal(v('signage_device_player_down{device="hn-1"}'), 0);
  t.equal(v('signage_device_player_down{device="hn-quiet"}'), 1);
  t.equal(v('signage_device_standby{device="hn-1"}'), 0, 'no §11 display.power: not in standby');
  t.equal(v('signage_device_output_suspect{device="hn-1"}'), 1, 'the event of the last hour, not the older one');
  t.equal(v('signage_device_group{device="hn-1",group="ba-dinh"}'), 1);
  t.equal(v('signage_device_group{device="hn-never",group="hoan-kiem"}'), 1);
  t.equal(v('signage_device_group{device="hn-swap",group="all"}'), 1, 'every screen is in `all`');

  const day = `device="hn-1",campaign="spot",day="${D}"`;
  t.equal(v(`signage_campaign_played{${day}}`), await fleet.archive.read((q) => count(q, `SELECT COUNT(*) AS n FROM plays WHERE device_id = 'hn-1' AND day = '${D}' AND outcome = 'completed' AND in_window = 1`)), 'played: completed in-window plays archived');
  t.equal(v(`signage_campaign_played{${day}}`), 4);
  t.equal(v(`signage_campaign_reported_played{${day}}`), 4, "the heartbeat's count (newer than the plays)");
  t.equal(v(`signage_campaign_target{${day}}`), 10);
  t.equal(v(`signage_campaign_on_track{${day}}`), 0, 'the heartbeat said onTrack false');
  t.equal(v(`signage_campaign_on_track{device="hn-swap",campaign="spot",day="${D}"}`), undefined, 'plays alone say nothing of onTrack');

  t.equal(v('signage_ingest_plays_archived_total'), fleet.batcher.totals.plays);
  t.ok((v('signage_ingest_messages_received_total') ?? 0) >= 14, 'this process counted what it received');
  t.equal(v('signage_ingest_connects_total'), fleet.ingest.counters.connects);
  t.equal(v('signage_ingest_read_pauses_total'), fleet.ingest.counters.held, 'read pauses: the ingest\'s held count');
  const dropped = [...s].filter(([k]) => k.startsWith('signage_ingest_messages_dropped_total{')).reduce((a, [, n]) => a + n, 0);
  t.ok(fleet.ingest.counters.bad >= 1, 'the subscription probe was dropped as bad');
  t.equal(dropped, fleet.ingest.counters.bad, 'dropped by reason adds up to the ingest\'s bad count');
  t.equal(v('signage_ingest_messages_dropped_total{reason="bad-event-id"}'), 1, 'a bad eventId counts under a fixed label');
  t.equal(v('signage_ingest_messages_dropped_total{reason="spoofed"}'), 1);
  t.notMatch(text, /evil-label/, 'no payload text in label values');
  t.ok(s.has('process_resident_memory_bytes'), 'process metrics in the same registry');

  const again = samples(await metrics.render());
  t.equal(again.get('signage_plays_total{device="hn-1",outcome="completed"}'), 4, 'a second scrape does not add the counts again');
  t.equal(again.get('signage_device_store_replaced_total{device="hn-swap"}'), 1);
});

/** An item as the ingest hands it to the archive; `raw` is what the devices row keeps. */
const hbItem = (hb: Heartbeat, raw: object = hb): Item => ({ kind: 'heartbeat', deviceId: hb.deviceId, heartbeat: hb, raw: JSON.stringify(raw) });

t.test('standby by schedule, each screen its own day, and the plays counter across days', async (t) => {
  const dir = tempDir(t, 'fleet-metrics-');
  const archive = new Archive(path.join(dir, 'archive.db'), silentLogger());
  await archive.start();
  t.teardown(() => archive.stop());
  let now = NOW;
  const metrics = new FleetMetrics(archive, { now: () => now });

  // §11 heartbeats carry display.power; today's heartbeat schema predates it, so the raw JSON
  // (what the devices row keeps) carries it beside the decoded heartbeat.
  const night = heartbeat({ now: NOW - 20_000, deviceId: 'night', bootedAt: NOW - 3600_000, backlog: 0, fields: { compliance: [{ campaignId: 'spot', day: D, played: 10, target: 10, onTrack: true }] } });
  // A screen a timezone ahead, already on the next day; its previous day stays out.
  const next = '2026-12-06';
  const east = heartbeat({ now: NOW - 20_000, deviceId: 'east', bootedAt: NOW - 3600_000, backlog: 0, fields: { compliance: [
    { campaignId: 'spot', day: D, played: 9, target: 10, onTrack: false }, { campaignId: 'spot', day: next, played: 0, target: 10, onTrack: true }] } });
  await archive.write([hbItem(night, { ...night, display: { power: 'standby', brightnessPct: 0 } }), hbItem(east)]);
  await archive.write(plays('east', 'e', [1, 2], { day: D }).map((p) => ({ kind: 'play', deviceId: 'east', play: p, raw: JSON.stringify(p) })));

  let s = samples(await metrics.render());
  t.equal(s.get('signage_device_standby{device="night"}'), 1, 'display.power standby');
  t.equal(s.get('signage_device_standby{device="east"}'), 0);
  t.equal(s.get('signage_device_up{device="night"}'), 0, 'no status: not up');
  t.equal(s.get(`signage_campaign_target{device="east",campaign="spot",day="${next}"}`), 10, "east's current day");
  t.equal(s.get(`signage_campaign_target{device="east",campaign="spot",day="${D}"}`), undefined, 'only the current day of each screen');
  t.equal(s.get(`signage_campaign_played{device="east",campaign="spot",day="${next}"}`), 0, 'its plays were of the day before');
  t.equal(s.get(`signage_campaign_on_track{device="night",campaign="spot",day="${D}"}`), 1);
  t.equal(s.get('signage_plays_total{device="east",outcome="completed"}'), 2);

  // Four days on: the day of those plays is settled (counted once and kept); new plays come in on
  // the new day and a late one for the old day (a screen back after days offline).
  now = NOW + 4 * 86_400_000;
  const later = '2026-12-09';
  await archive.write([
    ...plays('east', 'e', [3, 4, 5], { day: later }).map((p): Item => ({ kind: 'play', deviceId: 'east', play: p, raw: JSON.stringify(p) })),
  ]);
  s = samples(await metrics.render());
  t.equal(s.get('signage_plays_total{device="east",outcome="completed"}'), 5, 'settled days and recent days add up');
  t.equal(s.get(`signage_campaign_target{device="east",campaign="spot",day="${next}"}`), undefined, 'a day 3 days old is no screen\'s today');
  t.equal(s.get(`signage_campaign_target{device="east",campaign="spot",day="${later}"}`), 10, 'its plays of the day speak for the plan');
  const late = plays('east', 'e', [6], { day: '2026-12-01' }).map((p): Item => ({ kind: 'play', deviceId: 'east', play: p, raw: JSON.stringify(p) }));
  await archive.write(late);
  t.equal(samples(await metrics.render()).get('signage_plays_total{device="east",outcome="completed"}'), 5, 'a late play of a settled day waits for the next recount');
  now += 86_400_000;
  t.equal(samples(await metrics.render()).get('signage_plays_total{device="east",outcome="completed"}'), 6, 'the daily recount takes it in: the counter only grows');
  t.equal(samples(await metrics.render()).get('signage_device_last_heartbeat_age_seconds{device="night"}'), (now - (NOW - 20_000)) / 1000);
});

t.test('alert rules: promtool check rules and promtool test rules', async (t) => {
  const check = promtool(['check', 'rules', 'fleet/prometheus/alerts.yml']);
  t.equal(check.status, 0, check.out);
  t.match(check.out, /SUCCESS: 10 rules found/);
  const test = promtool(['test', 'rules', 'fleet/prometheus/alerts.test.yml']);
  t.equal(test.status, 0, test.out);
  t.match(test.out, /SUCCESS/);
  const tests = readFileSync(path.join(repo, 'fleet/prometheus/alerts.test.yml'), 'utf8');
  for (const alert of [...readFileSync(path.join(repo, 'fleet/prometheus/alerts.yml'), 'utf8').matchAll(/- alert: (\w+)/g)].map((m) => m[1]!)) {
    t.match(tests, new RegExp(`alertname: ${alert}\\n\\s+exp_alerts:\\n\\s+- exp_labels`), `${alert} has a firing case`);
  }
});

t.test('the alert rules and the Grafana dashboard use only exported metrics, in valid PromQL', async (t) => {
  const dir = tempDir(t, 'fleet-metrics-');
  const archive = new Archive(path.join(dir, 'archive.db'), silentLogger());
  await archive.start();
  t.teardown(() => archive.stop());
  const counters = { received: 0, bad: 0, badByReason: {}, connects: 0, held: 0 };
  const totals = { batches: 0, rows: 0, plays: 0, duplicates: 0, dropped: 0, failures: 0 };
  const exported = names(await new FleetMetrics(archive, { ingest: { counters }, batcher: { totals } }).render());
  t.ok(exported.has('signage_device_up') && exported.has('signage_ingest_rows_total'), 'names read from the exposition');

  const dashboard = JSON.parse(readFileSync(path.join(repo, 'fleet/grafana/dashboard.json'), 'utf8')) as { panels: { title: string; targets?: { expr: string }[] }[]; templating: { list: { query?: unknown }[] } };
  const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((x) => ({ where: p.title, expr: x.expr })));
  t.ok(exprs.length >= 20, `${exprs.length} panel queries`);
  const variableQueries = dashboard.templating.list.map((v) => (v.query as { query?: string } | undefined)?.query).filter((q): q is string => typeof q === 'string');
  const rules = readFileSync(path.join(repo, 'fleet/prometheus/alerts.yml'), 'utf8');
  const used = (s: string): string[] => [...s.matchAll(/\b((?:signage|process|nodejs)_[a-z0-9_]+)\b/g)].map((m) => m[1]!);
  for (const { where, expr } of [...exprs, ...variableQueries.map((q) => ({ where: 'variable', expr: q })), { where: 'alerts.yml', expr: rules }]) {
    for (const n of used(expr)) t.ok(exported.has(n), `${where}: ${n} is exported`);
  }
  // Each panel query, its variables filled in, as a recording rule: promtool parses every one.
  const fill = (e: string): string => e.replaceAll('$device', '.*').replaceAll('$group', 'all').replaceAll('$job', '.*');
  const file = path.join(dir, 'dashboard-rules.yml');
  writeFileSync(file, JSON.stringify({ groups: [{ name: 'dashboard', rules: exprs.map((x, i) => ({ record: `dashboard:q${i}`, expr: fill(x.expr) })) }] }));
  const check = promtool(['check', 'rules', file]);
  t.equal(check.status, 0, `dashboard PromQL: ${check.out}`);
});
