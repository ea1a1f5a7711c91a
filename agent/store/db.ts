import sqlite3 from 'sqlite3';

type Param = string | number | null | Buffer;

/**
 * A promise face on one sqlite3 connection. sqlite3 runs statements on libuv's pool, so two
 * async callers could interleave BEGIN/COMMIT on the shared connection; `tx` serialises whole
 * transactions, and single statements outside `tx` also wait their turn.
 *
 * Two lanes wait for the connection: `play` (proof-of-play writes) goes before `other` (events,
 * desired state, reads), so a burst of event writes never delays the record of a spot
 * (issue 14: a play's end was once recorded 29 s late behind 51,175 `rejected` rows). Within a
 * lane, order is kept; only one task runs at a time.
 */
export type Lane = 'play' | 'other';

export class Db {
  private readonly waiting: Record<Lane, Array<() => Promise<void>>> = { play: [], other: [] };
  private busy = false;

  private constructor(private readonly db: sqlite3.Database) {}

  /** `readOnly`: for tools that look at a store without changing it (doctor). */
  static open(file: string, opts: { readOnly?: boolean } = {}): Promise<Db> {
    return new Promise((resolve, reject) => {
      const mode = opts.readOnly ? sqlite3.OPEN_READONLY : sqlite3.OPEN_READWRITE | sqlite3.OPEN_CREATE;
      const d = new sqlite3.Database(file, mode, (err) => (err ? reject(err) : resolve(new Db(d))));
    });
  }

  close(): Promise<void> {
    return this.serial('other', () => new Promise<void>((res, rej) => this.db.close((e) => (e ? rej(e) : res()))));
  }

  /** Runs `fn` inside BEGIN IMMEDIATE … COMMIT, alone on the connection; ROLLBACK on any throw. */
  tx<T>(fn: (q: Query) => Promise<T>, lane: Lane = 'other'): Promise<T> {
    return this.serial(lane, async () => {
      const q = new Query(this.db);
      await q.run('BEGIN IMMEDIATE');
      try {
        const r = await fn(q);
        await q.run('COMMIT');
        for (const f of q.committed) f();
        return r;
      } catch (e) {
        await q.run('ROLLBACK').catch(() => undefined);
        throw e;
      }
    });
  }

  /** A read or a single statement, in turn with transactions. */
  read<T>(fn: (q: Query) => Promise<T>, lane: Lane = 'other'): Promise<T> {
    return this.serial(lane, () => fn(new Query(this.db)));
  }

  private serial<T>(lane: Lane, fn: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.waiting[lane].push(() => Promise.resolve().then(fn).then(resolve, reject));
      this.pump();
    });
  }

  private pump(): void {
    if (this.busy) return;
    const next = this.waiting.play.shift() ?? this.waiting.other.shift();
    if (!next) return;
    this.busy = true;
    void next().finally(() => {
      this.busy = false;
      this.pump();
    });
  }
}

export class Query {
  /** Run after this transaction commits (in-memory state that must follow the file, not lead it). */
  readonly committed: Array<() => void> = [];

  constructor(private readonly db: sqlite3.Database) {}

  onCommit(fn: () => void): void {
    this.committed.push(fn);
  }

  run(sql: string, params: Param[] = []): Promise<{ lastID: number; changes: number }> {
    return new Promise((resolve, reject) => {
      this.db.run(sql, params, function (this: sqlite3.RunResult, err: Error | null) {
        if (err) reject(err);
        else resolve({ lastID: this.lastID, changes: this.changes });
      });
    });
  }

  all<T>(sql: string, params: Param[] = []): Promise<T[]> {
    return new Promise((resolve, reject) => {
      this.db.all(sql, params, (err, rows) => (err ? reject(err) : resolve(rows as T[])));
    });
  }

  async get<T>(sql: string, params: Param[] = []): Promise<T | undefined> {
    return new Promise((resolve, reject) => {
      this.db.get(sql, params, (err, row) => (err ? reject(err) : resolve(row as T | undefined)));
    });
  }

  exec(sql: string): Promise<void> {
    return new Promise((resolve, reject) => this.db.exec(sql, (err) => (err ? reject(err) : resolve())));
  }
}
