import type sqlite3 from 'sqlite3';
import type { Param } from './params.js';

// One sqlite3 connection's prepared statements (db.ts's Db), and the parameters bound to them ahead
// of a run (Db.prebind).

/** Prepared statements one connection keeps at most (the ingest's few shapes, plus readers'). */
const MAX_PREPARED = 256;

/**
 * The connection's prepared statements by SQL text. Why: compiling the ingest's 1,000-row INSERT took
 * 6-8 ms of a ~40 ms batch, every batch. The oldest is finalized past MAX_PREPARED; all are before
 * the connection closes (sqlite3 refuses to close with live statements).
 */
export class StatementCache {
  private readonly byText = new Map<string, sqlite3.Statement>();
  readonly bound = new Bound();

  constructor(private readonly db: sqlite3.Database) {}

  /** The statement for `sql` if it is prepared already. */
  peek(sql: string): sqlite3.Statement | undefined {
    return this.byText.get(sql);
  }

  async get(sql: string): Promise<sqlite3.Statement> {
    const hit = this.byText.get(sql);
    if (hit) return hit;
    const stmt = await new Promise<sqlite3.Statement>((resolve, reject) => {
      const s = this.db.prepare(sql, (err) => (err ? reject(err) : resolve(s)));
    });
    this.byText.set(sql, stmt);
    if (this.byText.size > MAX_PREPARED) {
      const [oldest, old] = this.byText.entries().next().value as [string, sqlite3.Statement];
      this.byText.delete(oldest);
      old.finalize();
    }
    return stmt;
  }

  async clear(): Promise<void> {
    const all = [...this.byText.values()];
    this.byText.clear();
    await Promise.all(all.map((s) => new Promise<void>((resolve) => s.finalize(() => resolve()))));
  }
}

/**
 * Parameters bound to a statement ahead of its run (Db.prebind): which array, and whether sqlite3
 * has said the bind succeeded. A bind that failed, or has not answered yet when the run comes, is
 * bound again by the run (a failed bind leaves the statement's values cleared or half set).
 */
class Bound {
  private readonly byStmt = new WeakMap<sqlite3.Statement, { params: Param[]; ok: boolean }>();

  /** Resolves with sqlite3's answer: true if bound. */
  bind(stmt: sqlite3.Statement, params: Param[]): Promise<boolean> {
    const entry = { params, ok: false };
    this.byStmt.set(stmt, entry);
    return new Promise((resolve) => {
      stmt.bind(params, (err: Error | null) => {
        entry.ok = !err;
        resolve(entry.ok);
      });
    });
  }

  /** True if `stmt` holds `params` now, so it may run without them. Forgets them either way: the caller's run or read is the statement's next operation. */
  take(stmt: sqlite3.Statement, params: Param[]): boolean {
    const entry = this.byStmt.get(stmt);
    this.byStmt.delete(stmt);
    return entry !== undefined && entry.ok && entry.params === params;
  }
}
