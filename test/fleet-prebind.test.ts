// The next batch's plays' INSERT built and bound while the batch before it commits (issue 11: the
// event loop converted a 1,000-play INSERT's parameters between BEGIN's answer and the INSERT, with
// SQLite waiting). Checked here: a prebound run goes without parameters and stores the bound rows;
// any other use of the statement in between, or a failed bind, makes the run bind its own again;
// the archive uses a batch built ahead only for that very batch; and the batcher hands the archive
// the batch it fixed as the next one, unless the write before it failed.
import t from 'tap';
import sqlite3 from 'sqlite3';
import { Archive } from '../fleet/archive/archive.js';
import { Db, type Param } from '../fleet/archive/db.js';
import { emptyStats, type BatchStats } from '../fleet/archive/writes.js';
import { Batcher } from '../fleet/ingest/batcher.js';
import type { Item } from '../fleet/ingest/decode.js';
import { silentLogger } from '../fleet/log.js';
import { plays } from './helpers/fleet-rig.js';
import { tempDir, type Teardown } from './helpers/tmp.js';
import { waitFor } from './helpers/wait.js';

/** Records, for every Statement#run, whether it was given parameters. */
function spyRuns(t: Teardown): Array<'params' | 'bound'> {
  const runs: Array<'params' | 'bound'> = [];
  const proto = sqlite3.Statement.prototype;
  const orig = proto.run;
  t.teardown(() => { proto.run = orig; });
  proto.run = function (this: sqlite3.Statement, ...args: unknown[]) {
    runs.push(typeof args[0] === 'function' ? 'bound' : 'params');
    return (orig as (...a: unknown[]) => sqlite3.Statement).apply(this, args);
  } as typeof proto.run;
  return runs;
}

/** sqlite3's answer to every Statement#bind of parameters from now on: true if bound (Database#prepare binds none, only to get its callback called). */
function spyBinds(t: Teardown): Array<Promise<boolean>> {
  const answers: Array<Promise<boolean>> = [];
  const proto = sqlite3.Statement.prototype;
  const orig = proto.bind;
  t.teardown(() => { proto.bind = orig; });
  proto.bind = function (this: sqlite3.Statement, ...args: unknown[]) {
    const cb = args.at(-1);
    if (Array.isArray(args[0]) && typeof cb === 'function') {
      answers.push(new Promise((resolve) => {
        args[args.length - 1] = (err: Error | null) => { (cb as (e: Error | null) => void)(err); resolve(!err); };
      }));
    }
    return (orig as (...a: unknown[]) => sqlite3.Statement).apply(this, args);
  } as typeof proto.bind;
  return answers;
}

const INSERT = 'INSERT INTO v (k, a) VALUES (?, ?), (?, ?)';

async function openDb(t: Teardown): Promise<Db> {
  const db = await Db.open(`${tempDir(t, 'prebind-')}/p.db`);
  t.teardown(() => db.close());
  await db.read((q) => q.exec('CREATE TABLE v (k INTEGER PRIMARY KEY, a TEXT NOT NULL)'));
  await db.tx((q) => q.run(INSERT, [1, 'prepares the statement', 2, 'x'])); // prebind only binds a prepared statement
  return db;
}

const rows = (db: Db): Promise<Array<{ k: number; a: string }>> => db.read((q) => q.all('SELECT k, a FROM v WHERE k > 2 ORDER BY k'));

t.test('a prebound run goes without parameters and stores what was bound', async (t) => {
  const db = await openDb(t);
  const runs = spyRuns(t);
  const params: Param[] = [3, 'three', 4, 'four'];
  t.equal(await db.prebind(INSERT, params), true, 'bound');
  await db.tx((q) => q.run(INSERT, params));
  t.same(runs, ['params', 'bound'], 'BEGIN, then the INSERT without its parameters');
  t.same(await rows(db), [{ k: 3, a: 'three' }, { k: 4, a: 'four' }]);
});

t.test('a run of other parameters in between: each run stores its own', async (t) => {
  const db = await openDb(t);
  const runs = spyRuns(t);
  const a: Param[] = [3, 'a3', 4, 'a4'];
  const b: Param[] = [5, 'b5', 6, 'b6'];
  t.equal(await db.prebind(INSERT, a), true);
  await db.tx(async (q) => {
    await q.run(INSERT, b);
    await q.run(INSERT, a);
  });
  t.same(runs, ['params', 'params', 'params'], 'both bound their own: b replaced the prebound values');
  t.same(await rows(db), [{ k: 3, a: 'a3' }, { k: 4, a: 'a4' }, { k: 5, a: 'b5' }, { k: 6, a: 'b6' }]);
  // An equal array is not the same one: only the very array given to prebind runs without binding.
  t.equal(await db.prebind(INSERT, [7, 'c7', 8, 'c8']), true);
  await db.tx((q) => q.run(INSERT, [7, 'c7', 8, 'c8']));
  t.equal(runs.at(-1), 'params');
});

t.test('a failed bind, or one not answered yet, is bound again by the run', async (t) => {
  const db = await openDb(t);
  const runs = spyRuns(t);
  const tooMany: Param[] = [3, 'x', 4, 'y', 5];
  t.equal(await db.prebind(INSERT, tooMany), false, 'sqlite3 refused the bind');
  await t.rejects(db.tx((q) => q.run(INSERT, tooMany)), /SQLITE_RANGE/, 'the run fails as it would have without the prebind');
  t.same(runs.filter((r) => r === 'bound'), [], 'never run on what the failed bind left');
  t.same(await rows(db), [], 'and nothing half-bound was stored');
  const quick: Param[] = [9, 'quick', 10, 'quick'];
  void db.prebind(INSERT, quick); // not waited for: the run may come before the bind's answer
  await db.tx((q) => q.run(INSERT, quick));
  t.same(await rows(db), [{ k: 9, a: 'quick' }, { k: 10, a: 'quick' }]);
});

t.test('prebind of a statement not prepared yet does nothing', async (t) => {
  const db = await openDb(t);
  const runs = spyRuns(t);
  const sql = 'INSERT INTO v (k, a) VALUES (?, ?)';
  const params: Param[] = [3, 'fresh'];
  t.equal(await db.prebind(sql, params), false, 'nothing bound');
  await db.tx((q) => q.run(sql, params));
  t.same(runs, ['params', 'params']);
  t.same(await rows(db), [{ k: 3, a: 'fresh' }]);
});

const batch = (device: string, from: number, n = 40): Item[] => plays(device, 'S', Array.from({ length: n }, (_, i) => from + i))
  .map((p) => ({ kind: 'play', deviceId: p.deviceId, play: p, raw: JSON.stringify(p) }));

t.test('the archive builds the next batch while one commits, and uses it for that batch only', async (t) => {
  const archive = new Archive(`${tempDir(t, 'ahead-')}/a.db`, silentLogger());
  await archive.start();
  t.teardown(() => archive.stop());
  await archive.write(batch('ahead-0', 1)); // prepares the 40-play INSERT
  const runs = spyRuns(t);
  const binds = spyBinds(t);
  const later = new Date('2030-01-01T00:00:00.000Z');
  const second = batch('ahead-1', 1);
  const asked: number[] = [];
  await archive.write(batch('ahead-0', 41), new Date(), () => { asked.push(Date.now()); return second; });
  t.equal(asked.length, 1, 'asked once for the next batch');
  t.same(await Promise.all(binds), [true], 'its INSERT bound while this one committed');
  runs.length = 0;
  t.equal((await archive.write(second, later)).plays, 40);
  t.same(runs, ['params', 'bound'], 'its INSERT was bound while the batch before committed');
  const got = await archive.read((q) => q.all<{ event_id: string; seq: number; played: number; payload: string; received_at: string }>(
    "SELECT event_id, seq, played, payload, received_at FROM plays WHERE device_id = 'ahead-1' ORDER BY seq"));
  t.same(got.map((r) => [r.event_id, r.seq, r.played, r.payload]), second.map((it) => it.kind === 'play' && [it.play.eventId, it.play.seq, it.play.played, it.raw]), 'each play stored whole, as its own');
  t.ok(got.every((r) => r.received_at < later.toISOString() && Date.parse(r.received_at) >= asked[0]! - 1), 'received_at: when it was built, not the later write\'s time');

  // A batch built ahead that is not the next one written: the one written binds its own, and the
  // one built ahead, written after, too.
  const third = batch('ahead-2', 1);
  await archive.write(batch('ahead-0', 81), new Date(), () => third);
  t.same(await Promise.all(binds), [true, true], 'the third batch\'s INSERT bound, and then not used by the next write');
  runs.length = 0;
  const other = batch('ahead-3', 1);
  await archive.write(other);
  await archive.write(third);
  t.same(runs, ['params', 'params', 'params', 'params'], 'two BEGINs, two INSERTs with their own parameters');
  const count = await archive.read((q) => q.all<{ device_id: string; n: number; seqs: number }>(
    "SELECT device_id, count(*) AS n, sum(seq) AS seqs FROM plays WHERE device_id IN ('ahead-2', 'ahead-3') GROUP BY device_id ORDER BY device_id"));
  t.same(count, [{ device_id: 'ahead-2', n: 40, seqs: 820 }, { device_id: 'ahead-3', n: 40, seqs: 820 }]);
  const wrong = await archive.read((q) => q.all("SELECT event_id FROM plays WHERE event_id NOT LIKE device_id || ':%'"));
  t.same(wrong, [], 'no play filed under another screen');
});

const item = (n: number): Item => ({ kind: 'event', deviceId: `d-${n}`, event: { ts: '2026-12-05T00:00:00.000Z', type: 'applied' }, raw: String(n) }) as unknown as Item;

t.test('the batcher hands over the batch it fixed as the next one, unless the write before failed', async (t) => {
  const written: Item[][] = [];
  const fixed: Array<Item[] | undefined> = [];
  let failOnce = false;
  let release: () => void = () => undefined;
  const b = new Batcher(async (items, next): Promise<BatchStats> => {
    written.push(items);
    if (written.length === 1) await new Promise<void>((r) => { release = r; });
    fixed.push(next());
    if (failOnce) { failOnce = false; throw new Error('disk full'); }
    return emptyStats();
  }, { maxRows: 3, maxDelayMs: 0 }, silentLogger());
  for (let i = 0; i < 8; i++) b.add({ item: item(i), ack: () => undefined });
  await waitFor('the first write', () => written.length === 1);
  release();
  await waitFor('three writes', () => written.length === 3);
  t.same(fixed[0]?.map((it) => it.raw), ['3', '4', '5'], 'the first write was told the next full batch');
  t.equal(written[1], fixed[0], 'and the second write got that very array');
  t.equal(fixed[1], undefined, 'two left behind the second: not a full batch, nothing fixed');
  t.same(written[2]?.map((it) => it.raw), ['6', '7']);

  failOnce = true;
  for (let i = 8; i < 14; i++) b.add({ item: item(i), ack: () => undefined });
  await waitFor('the failed write retried', () => written.length === 6, 10_000);
  t.same(written.slice(3).map((w) => w.map((it) => it.raw)), [['8', '9', '10'], ['8', '9', '10'], ['11', '12', '13']], 'the retry wrote the failed batch, then the next');
  await b.drain();
});
