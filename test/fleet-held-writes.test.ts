// SQLite's held writes (Query.later, fleet/archive/db.ts): inside a transaction, a write nothing
// reads back goes to sqlite3's thread with the next statement or the COMMIT, its parameters written
// in as literals (params.ts). Checked here: the literal stores exactly what binding stores, or the
// value is bound instead; statements still run in the order issued; a rollback drops held writes
// and a failing one fails the whole transaction; and an ingest batch costs four calls to sqlite3's
// thread (issue 11: each call waited for the busy event loop).
import t from 'tap';
import sqlite3 from 'sqlite3';
import { Archive } from '../fleet/archive/archive.js';
import { Db, type Param } from '../fleet/archive/db.js';
import { inlineParams, mapParams, sqliteLiteral } from '../fleet/archive/params.js';
import { type Item } from '../fleet/ingest/decode.js';
import { silentLogger } from '../fleet/log.js';
import { plays } from './helpers/fleet-rig.js';
import { tempDir, type Teardown } from './helpers/tmp.js';

t.test('parameters become literals only where the literal is exactly the bound value', async (t) => {
  t.equal(mapParams(`SELECT '?', "a?b", ? -- ?\n, /* ? */ ? FROM x WHERE y = 'it''s ?'`, (n) => `<${n}>`),
    `SELECT '?', "a?b", <0> -- ?\n, /* ? */ <1> FROM x WHERE y = 'it''s ?'`, 'a ? in a literal, an identifier or a comment is text');
  t.equal(sqliteLiteral(null), 'NULL');
  t.equal(sqliteLiteral(42), '42');
  t.equal(sqliteLiteral(-2147483648), '-2147483648', 'the 32-bit range is written as digits…');
  t.equal(sqliteLiteral(2147483648), undefined, '…beyond it node-sqlite3 binds a REAL, so it is bound');
  t.equal(sqliteLiteral(1.5), undefined, 'a fraction is bound');
  t.equal(sqliteLiteral(Number.NaN), undefined);
  t.equal(sqliteLiteral("it's"), "'it''s'", 'a quote is doubled');
  t.equal(sqliteLiteral('a\u0000b'), undefined, 'a NUL would end the SQL text: bound');
  t.equal(inlineParams('INSERT INTO t VALUES (?, ?)', [1, 'x']), "INSERT INTO t VALUES (1, 'x')");
  t.equal(inlineParams('INSERT INTO t VALUES (?, ?)', [1]), undefined, 'fewer parameters than placeholders: bound (and refused by SQLite)');
  t.equal(inlineParams('INSERT INTO t VALUES (?)', [1, 2]), undefined, 'more: bound');
  t.equal(inlineParams('INSERT INTO t VALUES (?, ?)', [1, 1.5]), undefined, 'one value without a literal binds the statement');
});

async function openDb(t: Teardown, name: string): Promise<Db> {
  const db = await Db.open(`${tempDir(t, 'held-')}/${name}.db`);
  t.teardown(() => db.close());
  await db.read((q) => q.exec('CREATE TABLE v (k INTEGER PRIMARY KEY, a, b INTEGER, c TEXT)'));
  return db;
}

t.test('a held write stores what the bound one does, value for value and type for type', async (t) => {
  const db = await openDb(t, 'same');
  const values: Param[] = [null, 0, -1, 7, 2147483647, -2147483648, 2147483648, 2 ** 53 - 1, 1.5, -0.25, 1e21, '', "it's", 'a"b\\c', 'ünï ✓ 😀', 'x\u0000y', 'lone \ud800 x', '\u2028', '?', "'); DROP TABLE v; --", 'x'.repeat(100_000)];
  const row = (k: number, v: Param): Param[] => [k, v, v, v];
  await db.tx(async (q) => {
    for (const [i, v] of values.entries()) await q.run('INSERT INTO v VALUES (?, ?, ?, ?)', row(i, v));
    for (const [i, v] of values.entries()) await q.later('INSERT INTO v VALUES (?, ?, ?, ?)', row(1000 + i, v));
  });
  const got = await db.read((q) => q.all<{ k: number; a: string; b: string; c: string }>('SELECT k, typeof(a) || hex(a) AS a, typeof(b) || hex(b) AS b, typeof(c) || hex(c) AS c FROM v ORDER BY k'));
  t.equal(got.length, 2 * values.length, 'every row written, the DROP TABLE one included as text');
  const bound = got.filter((r) => r.k < 1000);
  const held = got.filter((r) => r.k >= 1000).map((r) => ({ ...r, k: r.k - 1000 }));
  t.same(held, bound, 'untyped, INTEGER and TEXT columns alike');
});

t.test('held writes run in the order issued, before any later statement of the transaction', async (t) => {
  const db = await openDb(t, 'order');
  const seen = await db.tx(async (q) => {
    await q.later('INSERT INTO v (k, a) VALUES (?, ?)', [1, 'first']);
    await q.later('UPDATE v SET a = ? WHERE k = ?', ['second', 1]);
    const mid = await q.get<{ a: string }>('SELECT a FROM v WHERE k = 1');
    await q.later('UPDATE v SET a = a || ? WHERE k = ?', ['+third', 1]);
    await q.run('UPDATE v SET a = a || ? WHERE k = ?', ['+fourth', 1]);
    await q.later('UPDATE v SET a = a || ? WHERE k = ?', ['+fifth', 1]);
    return mid?.a;
  });
  t.equal(seen, 'second', 'a read sees the writes held before it');
  t.equal((await db.read((q) => q.get<{ a: string }>('SELECT a FROM v WHERE k = 1')))?.a, 'second+third+fourth+fifth', 'and the COMMIT the last ones');
  await db.read((q) => q.later('INSERT INTO v (k, a) VALUES (?, ?)', [2, 'now']));
  t.equal((await db.read((q) => q.get<{ a: string }>('SELECT a FROM v WHERE k = 2')))?.a, 'now', 'outside a transaction a write runs at once');
});

t.test('a rollback drops held writes; a held write that fails fails the transaction and undoes all of it', async (t) => {
  const db = await openDb(t, 'fail');
  await t.rejects(db.tx(async (q) => {
    await q.run('INSERT INTO v (k, a) VALUES (?, ?)', [1, 'bound']);
    await q.later('INSERT INTO v (k, a) VALUES (?, ?)', [2, 'held']);
    throw new Error('the batch gave up');
  }), /gave up/);
  t.same(await db.read((q) => q.all('SELECT k FROM v')), [], 'neither the bound nor the held write');
  await t.rejects(db.tx(async (q) => {
    await q.run('INSERT INTO v (k, a) VALUES (?, ?)', [1, 'bound']);
    await q.later('INSERT INTO v (k, a) VALUES (?, ?)', [2, 'held']);
    await q.later('INSERT INTO v (k, a) VALUES (?, ?)', [2, 'the same key']);
    await q.later('INSERT INTO v (k, a) VALUES (?, ?)', [3, 'after the failure']);
  }), { code: 'SQLITE_CONSTRAINT' }, 'the COMMIT\'s call reports the failing write');
  t.same(await db.read((q) => q.all('SELECT k FROM v')), [], 'nothing of that transaction stays');
  await db.tx((q) => q.later('INSERT INTO v (k, a) VALUES (?, ?)', [4, 'next']));
  t.same(await db.read((q) => q.all('SELECT k FROM v')), [{ k: 4 }], 'the connection takes the next transaction');
});

t.test('a large write is bound, not held; a statement ending in a comment is held whole', async (t) => {
  const db = await openDb(t, 'large');
  const execs: number[] = [];
  const { exec } = sqlite3.Database.prototype;
  t.teardown(() => { sqlite3.Database.prototype.exec = exec; });
  sqlite3.Database.prototype.exec = function (this: sqlite3.Database, sql: string, cb?: (err: Error | null) => void) {
    execs.push(sql.length);
    return exec.call(this, sql, cb);
  };
  const big = 'x'.repeat(5_000_000);
  await db.tx(async (q) => {
    await q.later('INSERT INTO v (k, a) VALUES (?, ?)', [1, 'small']);
    await q.later('INSERT INTO v (k, a) VALUES (?, ?)', [2, big]);
    await q.later('INSERT INTO v (k, a) VALUES (?, ?) -- the last word', [3, 'commented']);
  });
  t.ok(execs.length > 0 && Math.max(...execs) < 1_000_000, `no call carried the 5 MB value as SQL (longest ${Math.max(...execs)} chars)`);
  const rows = await db.read((q) => q.all<{ k: number; n: number }>('SELECT k, length(a) AS n FROM v ORDER BY k'));
  t.same(rows, [{ k: 1, n: 5 }, { k: 2, n: 5_000_000 }, { k: 3, n: 9 }], 'all three written, in order');
});

t.test('a batch of plays costs four calls to sqlite3\'s thread, from screens the writer knows or not', async (t) => {
  const archive = new Archive(`${tempDir(t, 'calls-')}/a.db`, silentLogger());
  await archive.start();
  t.teardown(() => archive.stop());
  const batch = (screens: number[], from: number): Item[] => screens.flatMap((d) => plays(`calls-${d}`, `S${d}`, Array.from({ length: 50 }, (_, i) => from + i)))
    .map((p) => ({ kind: 'play', deviceId: p.deviceId, play: p, raw: JSON.stringify(p) }));
  t.equal((await archive.write(batch([0, 1, 2], 1))).plays, 150, 'the first batch meets the screens (and prepares the statements)');
  const calls: string[] = [];
  const spy = <K extends 'run' | 'all'>(proto: sqlite3.Statement, name: K): void => {
    const orig = proto[name];
    t.teardown(() => { proto[name] = orig; });
    proto[name] = function (this: sqlite3.Statement, ...args: unknown[]) {
      calls.push(name);
      return (orig as (...a: unknown[]) => sqlite3.Statement).apply(this, args);
    } as sqlite3.Statement[K];
  };
  spy(sqlite3.Statement.prototype, 'run');
  spy(sqlite3.Statement.prototype, 'all');
  const { exec, prepare } = sqlite3.Database.prototype;
  t.teardown(() => { Object.assign(sqlite3.Database.prototype, { exec, prepare }); });
  sqlite3.Database.prototype.exec = function (this: sqlite3.Database, sql: string, cb?: (err: Error | null) => void) {
    calls.push(`exec:${sql.split(';\n').length}`);
    return exec.call(this, sql, cb);
  };
  sqlite3.Database.prototype.prepare = function (this: sqlite3.Database, ...args: unknown[]) {
    calls.push('prepare');
    return (prepare as (...a: unknown[]) => sqlite3.Statement).apply(this, args);
  } as typeof prepare;

  t.equal((await archive.write(batch([0, 1, 2], 51))).plays, 150);
  t.same(calls, ['run', 'run', 'all', 'exec:4'], 'known screens: BEGIN, the plays, the stores read; then stores\' max_seq, compliance, last play and the COMMIT in one');
  calls.length = 0;
  t.equal((await archive.write(batch([3, 4, 5], 1))).plays, 150);
  t.same(calls, ['run', 'run', 'all', 'exec:6'], 'new screens: the same four, the new stores and device rows in the last');

  const stores = await archive.read((q) => q.all<{ device_id: string; max_seq: number }>("SELECT device_id, max_seq FROM stores WHERE device_id LIKE 'calls-%' ORDER BY device_id"));
  t.same(stores.map((r) => r.max_seq), [100, 100, 100, 50, 50, 50], 'the stores and their seqs were written');
  const devices = await archive.read((q) => q.all<{ n: number }>("SELECT count(*) AS n FROM devices WHERE device_id LIKE 'calls-%' AND last_play_at IS NOT NULL"));
  t.same(devices, [{ n: 6 }], 'every screen\'s row, with its last play');
  const comp = await archive.read((q) => q.get<{ played: number }>("SELECT played FROM compliance WHERE device_id = 'calls-0'"));
  t.same(comp, { played: 100 }, 'compliance (the newest play\'s count)');
});
