// signage-fleet's PostgreSQL archive against a real PostgreSQL (a throwaway cluster) and a real
// mosquitto: the migrations on both engines, plays landing once each, seq gaps and replaced stores,
// two writers racing on one screen's seqs, and the same messages giving the same rows and the same
// report in SQLite and in pg.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { deviceTopic, encode, heartbeat, statusOnline } from '../agent/protocol/index.js';
import { Archive } from '../fleet/archive/archive.js';
import type { Database, Query } from '../fleet/archive/db.js';
import { migrate, MIGRATIONS, schemaVersion } from '../fleet/archive/migrations.js';
import { openDatabase } from '../fleet/archive/open.js';
import { numberParams } from '../fleet/archive/pg.js';
import { decodeMessage } from '../fleet/ingest/decode.js';
import { silentLogger } from '../fleet/log.js';
import { compliance } from '../fleet/report/report.js';
import { count, FLEET_BIN, fleetConfig, plays, publishPlays, screenClient, startFleet, untilSubscribed } from './helpers/fleet-rig.js';
import { startBroker } from './helpers/mosquitto.js';
import { startPostgres } from './helpers/postgres.js';
import { tempDir } from './helpers/tmp.js';
import { waitFor } from './helpers/wait.js';

const run = promisify(execFile);
const cluster = await startPostgres(t);
let dbs = 0;
const freshDb = (): Promise<string> => cluster.createDb(`fleet_${++dbs}`);

async function opened(t: Test, target: string): Promise<Database> {
  const db = await openDatabase(target);
  t.teardown(() => db.close());
  return db;
}

t.test('? placeholders become $n outside literals, identifiers and comments; SQLite\'s ?NNN is refused', async (t) => {
  t.equal(numberParams(`SELECT '?', "a?b", ? -- ?\n, /* ? */ ? FROM x WHERE y = 'it''s ?' AND z = ?`),
    `SELECT '?', "a?b", $1 -- ?\n, /* ? */ $2 FROM x WHERE y = 'it''s ?' AND z = $3`);
  t.throws(() => numberParams('SELECT ?1'), /SQLite-only/);
});

t.test('migrations: both engines reach the same schema, a second run changes nothing, a newer archive is refused', async (t) => {
  const file = path.join(tempDir(t, 'fleet-mig-'), 'archive.db');
  const lite = await opened(t, file);
  const url = await freshDb();
  // Two processes starting together on one pg database: the advisory lock makes one wait.
  const [pgA, pgB] = [await opened(t, url), await opened(t, url)];
  t.same(await Promise.all([migrate(pgA), migrate(pgB)]), [MIGRATIONS.length, MIGRATIONS.length], 'pg: two migrations at once');
  t.equal(await migrate(lite), MIGRATIONS.length);
  for (const db of [lite, pgA]) {
    t.equal(await migrate(db), MIGRATIONS.length, `${db.dialect}: again`);
    const rows = await db.read((q) => q.all<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version'));
    t.same(rows, MIGRATIONS.map((_, i) => ({ version: i + 1 })), `${db.dialect}: one schema_migrations row per migration`);
  }
  const columns = async (db: Database): Promise<string[]> => db.read(async (q) => {
    if (q.dialect === 'postgres') {
      return (await q.all<{ c: string }>("SELECT table_name || '.' || column_name AS c FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1")).map((r) => r.c);
    }
    const tables = await q.all<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
    const out: string[] = [];
    for (const { name } of tables) for (const c of await q.all<{ name: string }>(`SELECT name FROM pragma_table_info('${name}')`)) out.push(`${name}.${c.name}`);
    return out.sort();
  });
  const liteCols = await columns(lite);
  t.ok(liteCols.includes('plays.event_id') && liteCols.includes('seq_gaps.lo'), `SQLite columns read (${liteCols.length})`);
  t.same(await columns(pgA), liteCols, 'the same tables and columns in both');

  // A SQLite archive from before schema_migrations (user_version only): the table is filled from it.
  await lite.read((q) => q.exec('DROP TABLE schema_migrations'));
  t.equal(await migrate(lite), MIGRATIONS.length);
  t.equal(await lite.read((q) => count(q, 'SELECT COUNT(*) AS n FROM schema_migrations')), MIGRATIONS.length, 'backfilled from user_version');

  await lite.read((q) => q.exec(`PRAGMA user_version = ${MIGRATIONS.length + 1}`));
  await t.rejects(migrate(lite), /newer than this signage-fleet/, 'SQLite: a newer archive is refused');
  await pgA.read((q) => q.run('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)', [MIGRATIONS.length + 1, 'later']));
  t.equal(await pgA.read(schemaVersion), MIGRATIONS.length + 1);
  await t.rejects(migrate(pgA), /newer than this signage-fleet/, 'pg: a newer archive is refused');
});

t.test('pg: plays sent twice land once each; a seq gap and a late arrival; a replaced store; junk counted', async (t) => {
  const broker = await startBroker(t);
  const dir = tempDir(t, 'fleet-pg-');
  const fleet = await startFleet(t, fleetConfig(dir, broker.url, 'ingest-pg', { db: await freshDb() }));
  t.equal(fleet.archive.dialect, 'postgres');
  await waitFor('ingest connected', () => fleet.ingest.connected);
  const screen = await screenClient(t, broker.url);
  await untilSubscribed(screen);

  const evs = plays('hn-1', 'aaaa000000000001', Array.from({ length: 300 }, (_, i) => i + 1));
  await publishPlays(screen, evs);
  await publishPlays(screen, evs.slice(100, 200)); // the outbox resends what lost its PUBACK
  await screen.publishAsync(deviceTopic('signage', 'hn-1', 'play'), '{not json', { qos: 1 });
  await publishPlays(screen, plays('hn-3', 'cccc000000000001', [1, 2, 3, 7, 8]));
  await waitFor('plays archived', () => fleet.batcher.totals.plays >= 305 && fleet.batcher.waiting === 0, 30_000);
  const q = <T>(fn: (q: Query) => Promise<T>): Promise<T> => fleet.archive.read(fn);
  const gaps = (): Promise<Array<{ store_id: string; lo: number; hi: number }>> => q((d) => d.all("SELECT store_id, lo, hi FROM seq_gaps WHERE device_id = 'hn-3' ORDER BY store_id, lo"));
  t.equal(await q((d) => count(d, "SELECT COUNT(*) AS n FROM plays WHERE device_id = 'hn-1'")), 300, '300 plays, each once');
  t.equal(await q((d) => count(d, "SELECT COUNT(DISTINCT seq) AS n FROM plays WHERE device_id = 'hn-1'")), 300);
  t.ok(fleet.batcher.totals.duplicates >= 100, `the resent 100 were duplicates (${fleet.batcher.totals.duplicates})`);
  t.same(await gaps(), [{ store_id: 'cccc000000000001', lo: 4, hi: 6 }], 'seqs 4-6 missing');
  t.equal(fleet.ingest.counters.bad, 2, 'the junk and the probe counted');

  await publishPlays(screen, plays('hn-3', 'cccc000000000001', [5]));
  await waitFor('gap split', async () => (await gaps()).length === 2);
  t.same(await gaps(), [{ store_id: 'cccc000000000001', lo: 4, hi: 4 }, { store_id: 'cccc000000000001', lo: 6, hi: 6 }], 'the late 5 split the gap');
  await publishPlays(screen, plays('hn-3', 'dddd000000000002', [1, 2]));
  await waitFor('new store plays', () => fleet.batcher.totals.plays >= 308);
  t.same(await q((d) => d.all("SELECT previous_store_id, store_id, source FROM store_changes WHERE device_id = 'hn-3'")),
    [{ previous_store_id: 'cccc000000000001', store_id: 'dddd000000000002', source: 'play' }], 'store replaced, recorded once');
  t.equal(await q((d) => count(d, "SELECT SUM(hi - lo + 1) AS n FROM seq_gaps WHERE device_id = 'hn-3'")), 2, 'the docs\' loss query: 2 missing');
  t.ok(fleet.ingest.connected, 'still connected');
});

t.test('pg: two writers racing on one screen\'s seqs (two ingest processes\' batches) leave no false gap and never deadlock', async (t) => {
  const url = await freshDb();
  const a = new Archive(url, silentLogger(), 'ingest-1');
  const b = new Archive(url, silentLogger(), 'ingest-2');
  await Promise.all([a.start(), b.start()]);
  t.teardown(async () => { await a.stop(); await b.stop(); });
  const item = (deviceId: string, seq: number, campaignId: string) => {
    const p = plays(deviceId, `${deviceId}-store`, [seq], { campaignId })[0]!;
    const raw = encode('play', p);
    const d = decodeMessage('signage', deviceTopic('signage', deviceId, 'play'), Buffer.from(raw));
    if (!d.ok) throw new Error(`rig play does not decode: ${d.reason}`);
    return d.item;
  };
  // Round robin deals a screen's plays to both: a takes seqs 1-5 of each ten, b 6-10, at once; the
  // two batches name the screens in opposite orders (a deadlock without one lock order), and their
  // plays are of two campaigns, so no other row (compliance) happens to serialize them.
  const ROUNDS = 30;
  for (let r = 0; r < ROUNDS; r++) {
    const base = r * 10;
    const mine = (lo: number, ids: string[], campaign: string) => ids.flatMap((id) => [1, 2, 3, 4, 5].map((k) => item(id, base + lo + k, campaign)));
    await Promise.all([a.write(mine(0, ['race-1', 'race-2'], 'spot-a')), b.write(mine(5, ['race-2', 'race-1'], 'spot-b'))]);
  }
  await a.read(async (q) => {
    t.equal(await count(q, 'SELECT COUNT(*) AS n FROM plays'), ROUNDS * 20, 'every play once');
    t.same(await q.all('SELECT device_id, store_id, lo, hi FROM seq_gaps'), [], 'no gap: each batch saw the other\'s committed max_seq');
    t.same(await q.all('SELECT device_id, max_seq FROM stores ORDER BY device_id'), [{ device_id: 'race-1', max_seq: ROUNDS * 10 }, { device_id: 'race-2', max_seq: ROUNDS * 10 }]);
    t.ok(await count(q, "SELECT COUNT(*) AS n FROM plays WHERE ingest_id = 'ingest-2'") > 0, 'both wrote');
    // Without one lock order the two batches deadlock (pg aborts one, the archive runs it again):
    // correct in the end, but a second lost each time. The server counts them.
    t.equal(await count(q, 'SELECT deadlocks AS n FROM pg_stat_database WHERE datname = current_database()'), 0, 'no deadlock');
  });
});

/** The archive's content without what depends on when or by whom it was archived. */
async function dump(q: Query): Promise<Record<string, unknown[]>> {
  return {
    devices: await q.all('SELECT device_id, store_id, status_json, status_online, status_session, heartbeat_json, heartbeat_at, last_play_at FROM devices ORDER BY device_id'),
    plays: await q.all('SELECT event_id, device_id, store_id, seq, campaign_id, day, started_at, ended_at, duration_ms, outcome, in_window, played, target, payload FROM plays ORDER BY event_id'),
    events: await q.all('SELECT device_id, digest, ts, type, detail FROM events ORDER BY device_id, digest'),
    stores: await q.all('SELECT device_id, store_id, max_seq FROM stores ORDER BY device_id, store_id'),
    seq_gaps: await q.all('SELECT device_id, store_id, lo, hi FROM seq_gaps ORDER BY device_id, store_id, lo'),
    store_changes: await q.all('SELECT device_id, previous_store_id, store_id, source FROM store_changes ORDER BY device_id, store_id'),
    compliance: await q.all('SELECT device_id, day, campaign_id, played, target, on_track, as_of FROM compliance ORDER BY device_id, day, campaign_id'),
    device_groups: await q.all('SELECT group_name, device_id FROM device_groups ORDER BY group_name, device_id'),
  };
}

t.test('the same messages into SQLite and into pg: the same rows, the same report (in process and from the command line)', async (t) => {
  const broker = await startBroker(t);
  const dir = tempDir(t, 'fleet-both-');
  const groups = { 'district-1': ['hn-a', 'hn-b', 'hn-c'], 'district-2': ['hn-a'] };
  // Two share groups: each archive gets every message.
  const lite = await startFleet(t, fleetConfig(dir, broker.url, 'ingest-lite', { groups, mqtt: { url: broker.url, clientId: 'ingest-lite', shareGroup: 'to-sqlite', keepaliveSec: 5 } }));
  const url = await freshDb();
  const pgf = await startFleet(t, fleetConfig(dir, broker.url, 'ingest-pg', { db: url, groups, mqtt: { url: broker.url, clientId: 'ingest-pg', shareGroup: 'to-pg', keepaliveSec: 5 } }));
  await waitFor('both connected', () => lite.ingest.connected && pgf.ingest.connected);
  const screen = await screenClient(t, broker.url);
  // Each ingest counts a probe as junk once its shared subscription is in place.
  await waitFor('both subscribed', async () => {
    await screen.publishAsync(deviceTopic('signage', 'probe', 'play'), 'probe', { qos: 1 });
    return lite.ingest.counters.bad >= 1 && pgf.ingest.counters.bad >= 1;
  }, 15_000, 50);

  const D = '2026-12-05';
  const PREV = '2026-12-04';
  const hb = async (id: string, day: string, played: number, target: number, storeId: string): Promise<void> => {
    const at = Date.parse(`${day}T10:00:00Z`);
    const msg = heartbeat({ now: at, deviceId: id, bootedAt: at - 3600_000, backlog: 0, fields: { storeId, compliance: [{ campaignId: 'spot', day, played, target, onTrack: played >= target }] } });
    await screen.publishAsync(deviceTopic('signage', id, 'heartbeat'), encode('heartbeat', msg), { qos: 0 });
  };
  for (const id of ['hn-a', 'hn-b', 'hn-c']) {
    await publishPlays(screen, plays(id, `${id}-s1`, [1, 2, 3], { day: PREV, target: 3 }));
    await hb(id, PREV, 3, 3, `${id}-s1`);
  }
  await publishPlays(screen, plays('hn-a', 'hn-a-s1', [4, 5, 8], { day: D, target: 4 }));
  await publishPlays(screen, plays('hn-a', 'hn-a-s1', [1, 2, 3], { day: PREV, target: 3 })); // resent
  await publishPlays(screen, plays('hn-b', 'hn-b-s1', [4], { day: D, target: 3 }));
  await publishPlays(screen, plays('hn-b', 'hn-b-s1', [5], { day: D, target: 3, outcome: 'interrupted' }));
  await hb('hn-a', D, 3, 4, 'hn-a-s1');
  await hb('hn-b', D, 1, 3, 'hn-b-s1');
  const st = statusOnline({ session: 2, storeId: 'hn-a-s1', agentVersion: '0.1.0', bootedAt: Date.parse(`${D}T00:00:00Z`), applied: { groups: {}, overrides: { groups: {} } } });
  await screen.publishAsync(deviceTopic('signage', 'hn-a', 'status'), encode('status', st), { qos: 1, retain: true });
  await screen.publishAsync(deviceTopic('signage', 'hn-b', 'event'), encode('event', { ts: `${D}T05:00:01.000Z`, type: 'applied', detail: { version: 1 } }), { qos: 1 });
  const both = async (what: string, sql: string, n: number): Promise<void> => {
    await waitFor(what, async () => (await lite.archive.read((q) => count(q, sql))) === n && (await pgf.archive.read((q) => count(q, sql))) === n, 30_000);
  };
  await both('first plays in both', 'SELECT COUNT(*) AS n FROM plays', 14);
  await both('compliance in both', 'SELECT COUNT(*) AS n FROM compliance', 5);
  await both('event in both', 'SELECT COUNT(*) AS n FROM events', 1);
  // Later: the late seq 6, and hn-b's replaced SD card.
  await publishPlays(screen, plays('hn-a', 'hn-a-s1', [6], { day: D, target: 4 }));
  await publishPlays(screen, plays('hn-b', 'hn-b-s2', [1, 2], { day: D, target: 3 }));
  await both('later plays in both', 'SELECT COUNT(*) AS n FROM plays', 17);
  await waitFor('batches done', () => lite.batcher.waiting === 0 && pgf.batcher.waiting === 0);

  const fromLite = await lite.archive.read(dump);
  const fromPg = await pgf.archive.read(dump);
  t.same(fromPg.seq_gaps, [{ device_id: 'hn-a', store_id: 'hn-a-s1', lo: 7, hi: 7 }], 'pg: seq 7 missing (6 came late)');
  t.same(fromPg.store_changes, [{ device_id: 'hn-b', previous_store_id: 'hn-b-s1', store_id: 'hn-b-s2', source: 'play' }], 'pg: hn-b\'s store replaced');
  for (const k of Object.keys(fromLite)) t.same(fromPg[k], fromLite[k], `${k}: the same rows in both`);
  t.equal(fromPg.plays?.length, 17, 'both: every play once');

  for (const range of [{ from: D, to: D }, { from: PREV, to: D }, { from: PREV, to: D, group: 'district-2' }]) {
    const r1 = await lite.archive.read((q) => compliance(q, range));
    const r2 = await pgf.archive.read((q) => compliance(q, range));
    t.same(r2, r1, `report ${JSON.stringify(range)}: pg = SQLite`);
  }
  const rD = await pgf.archive.read((q) => compliance(q, { from: D, to: D }));
  t.same(rD.rows.map((x) => [x.deviceId, x.played, x.target, x.met, x.source]), [
    ['hn-a', 4, 4, true, 'reported'],
    ['hn-b', 3, 3, true, 'reported'],
    ['hn-c', 0, 3, false, 'last-known'],
  ], 'pg report: hn-a 4 of 4, hn-b 3 of 3 across both stores (the interrupted one not counted), hn-c silent');

  const cli = async (db: string, ...extra: string[]): Promise<string> => (await run(process.execPath, [FLEET_BIN, 'report', '--db', db, '--from', PREV, '--to', D, ...extra])).stdout;
  const liteCsv = await cli(path.join(dir, 'archive.db'), '--csv');
  t.equal(await cli(url, '--csv'), liteCsv, 'report --db postgres://… --csv prints what report --db archive.db --csv does');
  t.match(liteCsv, `${D},hn-c,district-1,spot,0,3,false,0,last-known`);
  t.equal(await cli(url), await cli(path.join(dir, 'archive.db')), 'and the text table');
  const bad = await run(process.execPath, [FLEET_BIN, 'report', '--db', cluster.url('no_such_db'), '--from', D]).catch((e: { code: number; stderr: string }) => e);
  t.equal((bad as { code: number }).code, 1, 'a database that does not exist: exit 1');
  t.match((bad as { stderr: string }).stderr, /cannot open postgres:\/\/postgres@127\.0\.0\.1:\d+\/no_such_db/);
});
