// signage-fleet serve as a process (dist/fleet/main.js) on a real PostgreSQL: kill -9 mid-stream and
// restart loses nothing (the PUBACK follows pg's COMMIT); two processes on one shared subscription
// and one database split the plays with nothing lost or doubled and no false seq gap.
import t from 'tap';
import { openDatabase } from '../fleet/archive/open.js';
import { count, FleetProcess, plays, publishPlays, screenClient, untilSubscribed } from './helpers/fleet-rig.js';
import { startBroker } from './helpers/mosquitto.js';
import { startPostgres } from './helpers/postgres.js';
import { tempDir } from './helpers/tmp.js';
import { sleep, waitFor } from './helpers/wait.js';

const cluster = await startPostgres(t);

async function archived(url: string, sql = 'SELECT COUNT(*) AS n FROM plays'): Promise<number> {
  const db = await openDatabase(url);
  try {
    return await db.read((q) => count(q, sql));
  } catch {
    return 0; // not migrated yet
  } finally {
    await db.close();
  }
}

const config = (db: string, url: string, clientId: string): Record<string, unknown> => ({ db, mqtt: { url, clientId, keepaliveSec: 5 } });

t.test('pg: kill -9 mid-stream, plays sent while down, restart: every play archived once', async (t) => {
  const broker = await startBroker(t);
  const db = await cluster.createDb('kill');
  const proc = new FleetProcess(tempDir(t, 'fleet-pgkill-'), config(db, broker.url, 'ingest-k')).register(t);
  proc.start();
  await waitFor('fleet subscribed', () => proc.logged('subscribed'), 20_000);
  t.ok(proc.lines.some((l) => l.includes('"engine":"postgres"')), 'the archive is PostgreSQL');
  const screen = await screenClient(t, broker.url);
  await untilSubscribed(screen);

  const N = 3000;
  const evs = plays('hn-k', 'eeee000000000001', Array.from({ length: N }, (_, i) => i + 1));
  let killedAt = -1;
  for (let i = 0; i < N; i += 100) {
    await publishPlays(screen, evs.slice(i, i + 100));
    if (i === 1000) {
      await waitFor('a first batch committed', async () => (await archived(db)) > 0, 30_000);
      await proc.kill9();
      killedAt = await archived(db);
    }
    await sleep(5);
  }
  t.ok(killedAt > 0 && killedAt < N, `killed mid-stream: ${killedAt} of ${N} archived at the kill`);
  t.ok(await archived(db) < N, 'nothing archives while the process is down');
  proc.start();
  await waitFor('every play archived', async () => (await archived(db)) >= N, 60_000);
  t.equal(await archived(db), N, `${N} plays, each once`);
  t.equal(await archived(db, 'SELECT COUNT(DISTINCT seq) AS n FROM plays'), N);
  t.equal(await archived(db, 'SELECT COUNT(*) AS n FROM seq_gaps'), 0, 'no seq gap');
  t.equal(await proc.stop(), 0, 'SIGTERM: exit 0');
});

t.test('pg: two ingest processes on one shared group and one database split the plays; each once', async (t) => {
  const broker = await startBroker(t);
  const dir = tempDir(t, 'fleet-pgshare-');
  const db = await cluster.createDb('share');
  const a = new FleetProcess(dir, config(db, broker.url, 'ingest-1'), 'a').register(t);
  const b = new FleetProcess(dir, config(db, broker.url, 'ingest-2'), 'b').register(t);
  // Both at once: they migrate the empty database together (the advisory lock orders them).
  a.start();
  b.start();
  await waitFor('both subscribed', () => a.logged('subscribed') && b.logged('subscribed'), 20_000);
  const screen = await screenClient(t, broker.url);
  await untilSubscribed(screen);

  const evs = Array.from({ length: 20 }, (_, d) => plays(`hn-s${d}`, 'ffff000000000001', Array.from({ length: 100 }, (_, i) => i + 1))).flat();
  for (let i = 0; i < evs.length; i += 200) await publishPlays(screen, evs.slice(i, i + 200));
  await waitFor('2000 archived', async () => (await archived(db)) >= 2000, 60_000);
  t.equal(await archived(db), 2000, '2000 plays, each once');
  const byA = await archived(db, "SELECT COUNT(*) AS n FROM plays WHERE ingest_id = 'ingest-1'");
  const byB = await archived(db, "SELECT COUNT(*) AS n FROM plays WHERE ingest_id = 'ingest-2'");
  t.ok(byA > 0 && byB > 0, `both took a share: ingest-1 ${byA}, ingest-2 ${byB}`);
  t.equal(byA + byB, 2000);
  t.equal(await archived(db, 'SELECT COUNT(*) AS n FROM seq_gaps'), 0, 'no seq gap across the two');
  t.equal(await archived(db, 'SELECT MIN(max_seq) AS n FROM stores'), 100, 'every screen\'s max seq is its last');
  t.equal(await archived(db, 'SELECT COUNT(*) AS n FROM schema_migrations'), 1, 'migrated once');
  t.same([await a.stop(), await b.stop()], [0, 0]);
});
