import sqlite3 from 'sqlite3';
import { inlineParams, type Param } from './params.js';
import { StatementCache } from './statements.js';

export type { Param } from './params.js';

/**
 * One face for both archive engines (SQLite, PostgreSQL), so the ingest's writes, the report and
 * every other reader run unchanged. SQL is written portable, with `?` placeholders (the pg backend
 * numbers them `$1…`); where the dialects really differ a caller branches on `dialect` (few places:
 * row locks, which SQLite has no syntax for because its writer holds the whole file). Integers come
 * back as JS numbers from both (pg's BIGINT and COUNT(*) included).
 */
export interface Query {
  readonly dialect: Dialect;
  /** `lastId`: SQLite's rowid of the last row the statement inserted (none on pg). */
  run(sql: string, params?: Param[]): Promise<RunResult>;
  all<R>(sql: string, params?: Param[]): Promise<R[]>;
  get<R>(sql: string, params?: Param[]): Promise<R | undefined>;
  /**
   * A write whose result nothing waits for. Statements still run in the order issued; SQLite, inside
   * a transaction, holds it and sends it with whatever comes next (the next statement, or the COMMIT)
   * in one call to sqlite3's thread (SqliteQuery says why). pg runs it at once.
   */
  later(sql: string, params?: Param[]): Promise<void>;
  /** Several statements, no parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export type Dialect = 'sqlite' | 'postgres';

export interface RunResult {
  changes: number;
  lastId?: number;
}

/**
 * `committing`: called once the COMMIT is on its way, before it is answered: work for the event loop
 * while the engine commits. It must not throw (the COMMIT's outcome would go unheard).
 */
export interface TxOptions {
  committing?: () => void;
}

/** An open archive connection (or pool): `tx` resolves only after COMMIT; `read` runs without a transaction. */
export interface Database {
  readonly dialect: Dialect;
  tx<T>(fn: (q: Query) => Promise<T>, opts?: TxOptions): Promise<T>;
  read<T>(fn: (q: Query) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  /**
   * A statement's parameters handed over ahead of the transaction that will run it with this very
   * array (the same object), so that run skips converting them. A hint: the run binds as usual if
   * the statement was used in between, or not yet prepared. SQLite only (sqlite3 converts each
   * value on the event loop; pg sends text). Resolves once the engine has answered: true if the
   * parameters are bound (nothing needs to wait for it; tests do).
   */
  prebind?(sql: string, params: Param[]): Promise<boolean>;
}

/**
 * The SQLite backend: a promise face on one sqlite3 connection, every call in turn. A transaction
 * (`tx`) runs alone from BEGIN IMMEDIATE to COMMIT, so the ingest's batches and the report's reads
 * never interleave; BEGIN IMMEDIATE takes the file's write lock, which is what serializes several
 * ingest processes on one file.
 */
export class Db implements Database {
  readonly dialect = 'sqlite';
  private tail: Promise<unknown> = Promise.resolve();

  private readonly cache: StatementCache;

  private constructor(private readonly db: sqlite3.Database) {
    this.cache = new StatementCache(db);
  }

  static open(file: string, opts: { readOnly?: boolean } = {}): Promise<Db> {
    return new Promise((resolve, reject) => {
      const mode = opts.readOnly ? sqlite3.OPEN_READONLY : sqlite3.OPEN_READWRITE | sqlite3.OPEN_CREATE;
      const d = new sqlite3.Database(file, mode, (err) => (err ? reject(err) : resolve(new Db(d))));
    });
  }

  close(): Promise<void> {
    return this.serial(async () => {
      await this.cache.clear();
      await new Promise<void>((res, rej) => this.db.close((e) => (e ? rej(e) : res())));
    });
  }

  /** BEGIN IMMEDIATE … COMMIT around `fn`; ROLLBACK on any throw. Resolves after the COMMIT. */
  tx<T>(fn: (q: Query) => Promise<T>, opts: TxOptions = {}): Promise<T> {
    return this.serial(async () => {
      const q = new SqliteQuery(this.db, this.cache, true);
      await q.run('BEGIN IMMEDIATE');
      try {
        const r = await fn(q);
        await q.commit(opts.committing);
        return r;
      } catch (e) {
        await q.rollback().catch(() => undefined);
        throw e;
      }
    });
  }

  /**
   * Binds `params` to `sql`'s prepared statement now (Database.prebind). Why: node-sqlite3 converts a
   * statement's parameters on the event loop when it is run, ~3 ms for a 1,000-play INSERT, and in
   * the ingest that ran between BEGIN's answer and the INSERT, with sqlite3's thread idle; bound
   * while the batch before commits, it is done while the loop would be waiting (issue 11's bench).
   * Invariant: a statement's operations run in the order they are called (sqlite3 queues them per
   * statement), and every run or read of it goes through `Bound.take`, which forgets the bound
   * parameters; so a run without parameters only ever follows the bind of the very array it was
   * given.
   */
  prebind(sql: string, params: Param[]): Promise<boolean> {
    const stmt = this.cache.peek(sql);
    return stmt ? this.cache.bound.bind(stmt, params) : Promise.resolve(false);
  }

  /** Reads or single statements, in turn with transactions. */
  read<T>(fn: (q: Query) => Promise<T>): Promise<T> {
    return this.serial(() => fn(new SqliteQuery(this.db, this.cache)));
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }
}

/** Characters of held SQL at most (SQLite refuses one call's text past SQLITE_MAX_SQL_LENGTH, 1e9 bytes). */
const MAX_HELD_CHARS = 4 * 1024 * 1024;

/** Statements for one exec; the newline before each `;` ends a trailing `--` comment first. */
const joinStatements = (sqls: readonly string[]): string => sqls.join('\n;\n');

/**
 * One connection's statements. In a transaction, `later` writes are held as SQL text with their
 * parameters written in as literals (params.ts), and go to sqlite3's thread in one `exec` with the
 * next statement's turn or the COMMIT. Why: every call costs two hops between the event loop and
 * that thread, and under load the loop is busy parsing the broker's next messages, so a hop back
 * waited 1-5 ms; the ingest's batch spent more time in those waits than in SQLite (issue 11's
 * bench). Invariant: statements run in the order they were issued, whichever way each is sent.
 */
class SqliteQuery implements Query {
  readonly dialect = 'sqlite';
  /** Held `later` writes; undefined outside a transaction (they run at once there). */
  private held: string[] | undefined;
  private heldChars = 0;

  constructor(private readonly db: sqlite3.Database, private readonly cache: StatementCache, inTransaction = false) {
    this.held = inTransaction ? [] : undefined;
  }

  async later(sql: string, params: Param[] = []): Promise<void> {
    const text = this.held ? inlineParams(sql, params) : undefined;
    // Bound instead: a value without a literal, or a statement whose text would be large (a batch
    // of big heartbeats; SQLite caps one call's SQL text, and a bound value is not copied into it).
    if (text === undefined || text.length > MAX_HELD_CHARS) {
      await this.run(sql, params);
      return;
    }
    if (this.heldChars + text.length > MAX_HELD_CHARS) await this.flush();
    this.held?.push(text);
    this.heldChars += text.length;
  }

  /** The held writes, then COMMIT, in one call; `committing` runs once it is sent. */
  async commit(committing?: () => void): Promise<void> {
    const sql = joinStatements([...(this.held ?? []), 'COMMIT']);
    this.held = undefined;
    const done = this.execNow(sql);
    committing?.();
    await done;
  }

  /** ROLLBACK; the held writes are dropped, never run. */
  async rollback(): Promise<void> {
    this.held = undefined;
    await this.execNow('ROLLBACK');
  }

  private async flush(): Promise<void> {
    if (!this.held || this.held.length === 0) return;
    const sql = joinStatements(this.held);
    this.held = [];
    this.heldChars = 0;
    await this.execNow(sql);
  }

  async run(sql: string, params: Param[] = []): Promise<RunResult> {
    await this.flush();
    const stmt = await this.cache.get(sql);
    const bound = this.cache.bound.take(stmt, params);
    return new Promise((resolve, reject) => {
      function done(this: sqlite3.RunResult, err: Error | null): void {
        if (err) reject(err);
        else resolve({ changes: this.changes, lastId: this.lastID });
      }
      if (bound) stmt.run(done);
      else stmt.run(params, done);
    });
  }

  async all<R>(sql: string, params: Param[] = []): Promise<R[]> {
    await this.flush();
    const stmt = await this.cache.get(sql);
    this.cache.bound.take(stmt, params);
    return new Promise((resolve, reject) => {
      stmt.all(params, (err, rows) => (err ? reject(err) : resolve(rows as R[])));
    });
  }

  async get<R>(sql: string, params: Param[] = []): Promise<R | undefined> {
    return (await this.all<R>(sql, params))[0];
  }

  async exec(sql: string): Promise<void> {
    await this.flush();
    await this.execNow(sql);
  }

  private execNow(sql: string): Promise<void> {
    return new Promise((resolve, reject) => this.db.exec(sql, (err) => (err ? reject(err) : resolve())));
  }
}
