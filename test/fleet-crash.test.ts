// signage-fleet as a process (dist/fleet/main.js): kill -9 mid-stream and restart loses nothing
// (persistent session + PUBACK after commit); two processes on one shared group split the plays.
import path from 'node:path';
import t from 'tap';
import { Db } from '../fleet/archive/db.js';
import { count, FleetProcess, plays, publishPlays, screenClient, untilSubscribed } from './helpers/fleet-rig.js';
import { startBroker } from './helpers/mosquitto.js';
import { tempDir } from './helpers/tmp.js';
import { sleep, waitFor } from './helpers/wait.js';

async function archived(file: string, sql = 'SELECT COUNT(*) AS n FROM plays'): Promise<number> {
  const db = await Db.open(file, { readOnly: true });
  try {
    return await db.read(async (q) => {
      await q.exec('PRAGMA busy_timeout = 5000');
      return count(q, sql);
    });
  } catch {
    return 0; // not created yet
  } finally {
    await db.close();
  }
}

const config = (dir: string, url: string, clientId: string): Record<string, unknown> => ({ db: path.join(dir, 'archive.db'), mqtt: { url, clientId, keepaliveSec: 5 } });

t.test('kill -9 mid-stream, plays sent while down, restart: every play archived once', async (t) => {
  const broker = await startBroker(t);
  const dir = tempDir(t, 'fleet-kill-');
  const db = path.join(dir, 'archive.db');
  const proc = new FleetProcess(dir, config(dir, broker.url, 'ingest-k')).register(t);
  proc.start();
  await waitFor('fleet subscribed', () => proc.logged('subscribed'), 20_000);
  const screen = await screenClient(t, broker.url);
  await untilSubscribed(screen);

  const N = 3000;
  const evs = plays('hn-k', 'eeee000000000001', Array.from({ length: N }, (_, i) => i + 1));
  let killedAt = -1;
  for (let i = 0; i < N; i += 100) {
    await publishPlays(screen, evs.slice(i, i + 100));
    if (i === 1000) {
      await proc.kill9();
      killedAt = await archived(db);
    }
    await sleep(5);
  }
  t.ok(killedAt < N, `killed mid-stream: ${killedAt} of ${N} archived at the kill`);
  t.ok(await archived(db) < N, 'nothing archives while the process is down');
  proc.start();
  await waitFor('every play archived', async () => (await archived(db)) >= N, 60_000);
  t.equal(await archived(db), N, `${N} plays, each once`);
  t.equal(await archived(db, 'SELECT COUNT(DISTINCT seq) AS n FROM plays'), N);
  t.equal(await archived(db, 'SELECT COUNT(*) AS n FROM seq_gaps'), 0, 'no seq gap');
  t.equal(await proc.stop(), 0, 'SIGTERM: exit 0');
});

t.test('two ingest processes on one shared group split the plays; the archive has each once', async (t) => {
  const broker = await startBroker(t);
  const dir = tempDir(t, 'fleet-share-');
  const db = path.join(dir, 'archive.db');
  const a = new FleetProcess(dir, config(dir, broker.url, 'ingest-1'), 'a').register(t);
  const b = new FleetProcess(dir, config(dir, broker.url, 'ingest-2'), 'b').register(t);
  a.start();
  await waitFor('a subscribed', () => a.logged('subscribed'), 20_000);
  b.start();
  await waitFor('b subscribed', () => b.logged('subscribed'), 20_000);
  const screen = await screenClient(t, broker.url);
  await untilSubscribed(screen);

  const evs = Array.from({ length: 20 }, (_, d) => plays(`hn-s${d}`, 'ffff000000000001', Array.from({ length: 100 }, (_, i) => i + 1))).flat();
  for (let i = 0; i < evs.length; i += 200) await publishPlays(screen, evs.slice(i, i + 200));
  await waitFor('2000 archived', async () => (await archived(db)) >= 2000, 60_000).catch((e: Error) => {
    const notable = (p: FleetProcess): string[] => p.lines.filter((l) => /"level":(40|50|60)|stderr/.test(l)).slice(-10);
    throw new Error(`${e.message}; ${JSON.stringify({ a: notable(a), b: notable(b) })}`);
  });
  t.equal(await archived(db), 2000, '2000 plays, each once');
  const byA = await archived(db, "SELECT COUNT(*) AS n FROM plays WHERE ingest_id = 'ingest-1'");
  const byB = await archived(db, "SELECT COUNT(*) AS n FROM plays WHERE ingest_id = 'ingest-2'");
  t.ok(byA > 0 && byB > 0, `both took a share: ingest-1 ${byA}, ingest-2 ${byB}`);
  t.equal(byA + byB, 2000);
  t.equal(await archived(db, 'SELECT COUNT(*) AS n FROM seq_gaps'), 0, 'no seq gap across the two');
  t.same([await a.stop(), await b.stop()], [0, 0]);
});
