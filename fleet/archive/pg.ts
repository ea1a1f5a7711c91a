import pg from 'pg';
import type { Database, Param, Query, RunResult, TxOptions } from './db.js';
import { mapParams } from './params.js';

/**
 * `?` placeholders to pg's `$1, $2, …`, skipping string literals, quoted identifiers and comments.
 * SQLite's numbered `?NNN` is refused rather than guessed at (write the parameter again instead).
 * pg's jsonb `?` operators are not used by the archive, so a bare `?` is always a parameter here.
 */
export function numberParams(sql: string): string {
  return mapParams(sql, (n, i) => {
    if (/\d/.test(sql[i + 1] ?? '')) throw new Error(`numbered parameter ?${sql[i + 1]} is SQLite-only: repeat the parameter with plain ?`);
    return `$${n + 1}`;
  });
}

/** Transient under concurrency: serialization failure, deadlock detected. The whole transaction is run again. */
const RETRYABLE = new Set(['40001', '40P01']);
const MAX_TRIES = 5;
const MAX_PREPARED = 500;

/**
 * The PostgreSQL backend: a small pool (the batcher's transactions one at a time, plus readers
 * such as the report or the NOC page beside them). Transactions are READ COMMITTED; the writes
 * that need more take row locks themselves (see Archive.write and writes.ts `lockDevices`). COMMIT
 * returns once the WAL is flushed (synchronous_commit on, the server's default), so `tx` resolving
 * means durable, and only then does the ingest acknowledge.
 */
export class PgDb implements Database {
  readonly dialect = 'postgres';
  private readonly names = new Map<string, { name: string; text: string }>();

  private constructor(private readonly pool: pg.Pool) {}

  static async open(url: string, onError: (e: Error) => void = () => undefined): Promise<PgDb> {
    const pool = new pg.Pool({
      connectionString: url,
      max: 4,
      application_name: 'signage-fleet',
      // int8 (COUNT(*), BIGINT columns) and numeric (SUM of BIGINT) as JS numbers, as SQLite gives
      // them: archive integers (seqs, counts, epoch-free) stay far below 2^53.
      types: { getTypeParser: ((oid: number, format?: string) => (oid === 20 || oid === 1700 ? Number : pg.types.getTypeParser(oid, format as 'text'))) as typeof pg.types.getTypeParser },
    });
    // An idle client losing its server (restart, network) must not crash the process; the next
    // query gets a fresh connection, and a failed write is retried by the batcher.
    pool.on('error', onError);
    const db = new PgDb(pool);
    try {
      await db.read((q) => q.get('SELECT 1'));
    } catch (e) {
      await pool.end().catch(() => undefined);
      throw e;
    }
    return db;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  async tx<T>(fn: (q: Query) => Promise<T>, opts: TxOptions = {}): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.pool.connect();
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        const r = await fn(new PgQuery(client, this.names));
        const committed = client.query('COMMIT');
        opts.committing?.();
        await committed;
        return r;
      } catch (e) {
        await client.query('ROLLBACK').catch((re: Error) => { broken = re; });
        const code = (e as { code?: string }).code;
        if (code && RETRYABLE.has(code) && attempt < MAX_TRIES) continue;
        throw e;
      } finally {
        client.release(broken);
      }
    }
  }

  async read<T>(fn: (q: Query) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      return await fn(new PgQuery(client, this.names));
    } finally {
      client.release();
    }
  }
}

class PgQuery implements Query {
  readonly dialect = 'postgres';

  constructor(private readonly client: pg.PoolClient, private readonly names: Map<string, { name: string; text: string }>) {}

  /** Named (prepared once per connection) statements: the archive's SQL is a small fixed set. */
  private prepared(sql: string): { name?: string; text: string } {
    let p = this.names.get(sql);
    if (!p) {
      // A reader building SQL on the fly (an IN list of varying length) must not grow this forever.
      if (this.names.size >= MAX_PREPARED) return { text: numberParams(sql) };
      p = { name: `fleet_${this.names.size + 1}`, text: numberParams(sql) };
      this.names.set(sql, p);
    }
    return p;
  }

  async run(sql: string, params: Param[] = []): Promise<RunResult> {
    const r = await this.client.query({ ...this.prepared(sql), values: params });
    return { changes: r.rowCount ?? 0 };
  }

  async all<R>(sql: string, params: Param[] = []): Promise<R[]> {
    const r = await this.client.query({ ...this.prepared(sql), values: params });
    return r.rows as R[];
  }

  async get<R>(sql: string, params: Param[] = []): Promise<R | undefined> {
    return (await this.all<R>(sql, params))[0];
  }

  /** At once: holding writes is for SQLite's hops to its thread (db.ts), which pg does not have. */
  async later(sql: string, params: Param[] = []): Promise<void> {
    await this.run(sql, params);
  }

  async exec(sql: string): Promise<void> {
    await this.client.query(sql);
  }
}
