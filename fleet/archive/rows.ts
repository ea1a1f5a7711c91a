import type { Dialect, Param, Query, RunResult } from './db.js';

// Set-based statements for the ingest's batches: one `INSERT … VALUES (…), (…), …` (or a row-value
// `IN (VALUES …)`) for many rows instead of one statement a row. Why: a statement costs a round trip
// to sqlite3's worker thread (or to the pg server) whatever it carries, and with one a row the
// archive managed ~10 % of what the broker could deliver (issue 11's bench).
//
// The SQL text stays portable (`?` placeholders; pg numbers them). How a set is cut into statements
// differs by engine. SQLite: as few as its bound-parameter limit allows (32,766: 2,047 plays), since
// each statement costs several hops between sqlite3's worker thread and the event loop, and the loop
// is busy receiving the next batch (measured: a trivial statement took 3-4 ms inside a busy ingest).
// PostgreSQL: chunks of power-of-two row counts (500 rows = 256 + 128 + 64 + 32 + 16 + 4) within
// 8,192 parameters, so pg's per-connection prepared statements stay a handful per statement kind,
// not one per batch size.

/** Bound parameters per statement at most. SQLite's is its compiled-in limit (SQLITE_MAX_VARIABLE_NUMBER). */
const MAX_PARAMS: Record<Dialect, number> = { sqlite: 32_766, postgres: 8192 };

/** `(?, ?), (?, ?)` for `rows` rows of `cols` columns. */
export function placeholders(rows: number, cols: number): string {
  const one = `(${Array.from({ length: cols }, () => '?').join(', ')})`;
  return Array.from({ length: rows }, () => one).join(', ');
}

/** Splits `rows` into the chunks one statement each carries (see above), in order; `fixed`: parameters each statement carries besides its rows. */
export function chunksFor<T>(dialect: Dialect, rows: readonly T[], cols: number, fixed = 0): T[][] {
  const max = MAX_PARAMS[dialect] - fixed;
  if (dialect === 'sqlite') {
    const size = Math.max(1, Math.floor(max / cols));
    const out: T[][] = [];
    for (let i = 0; i < rows.length; i += size) out.push(rows.slice(i, i + size));
    return out;
  }
  let cap = 1;
  while (cap * 2 * cols <= max) cap *= 2;
  const out: T[][] = [];
  let i = 0;
  while (i < rows.length) {
    let size = cap;
    while (size > rows.length - i) size /= 2;
    out.push(rows.slice(i, i + size));
    i += size;
  }
  return out;
}

/**
 * Each chunk of `rows` as one statement: `sql(values)` with the chunk's placeholder list, and its
 * parameters in order, then `after`'s (for placeholders `sql` puts after the list).
 */
function* statements(dialect: Dialect, rows: readonly Param[][], cols: number, sql: (values: string) => string, after: readonly Param[]): Generator<[string, Param[]]> {
  for (const chunk of chunksFor(dialect, rows, cols, after.length)) {
    const params: Param[] = [];
    for (const r of chunk) {
      if (r.length !== cols) throw new Error(`a row of ${r.length} values for ${cols} columns`);
      for (const v of r) params.push(v);
    }
    for (const v of after) params.push(v);
    yield [sql(placeholders(chunk.length, cols)), params];
  }
}

/**
 * Runs `sql(values)` once per chunk of `rows` (each row `cols` parameters, in order; `after`: the
 * parameters of placeholders `sql` writes after the values list, the same for every chunk) and returns
 * every row the statements return (`RETURNING`, or a SELECT's rows). Invariant: rows keep their
 * order across chunks, so a statement whose later rows depend on earlier ones (an upsert fed the
 * same key twice in SQLite) behaves as one statement would.
 */
export async function manyRows<R>(q: Query, rows: readonly Param[][], cols: number, sql: (values: string) => string, after: readonly Param[] = []): Promise<R[]> {
  const out: R[] = [];
  for (const [text, params] of statements(q.dialect, rows, cols, sql, after)) out.push(...(await q.all<R>(text, params)));
  return out;
}

/** A set-based statement's texts and parameters, built ahead of the run (Database.prebind). */
export type Statements = ReadonlyArray<readonly [string, Param[]]>;

/** `manyRun`'s statements, built but not run. */
export function manyStatements(dialect: Dialect, rows: readonly Param[][], cols: number, sql: (values: string) => string, after: readonly Param[] = []): Statements {
  return [...statements(dialect, rows, cols, sql, after)];
}

/** Runs statements built by `manyStatements`, in order: each one's result. */
export async function runStatements(q: Query, stmts: Statements): Promise<RunResult[]> {
  const out: RunResult[] = [];
  for (const [text, params] of stmts) out.push(await q.run(text, params));
  return out;
}

/** `manyRun` for writes whose results nothing reads (Query.later: SQLite sends them with the next statement). */
export async function manyLater(q: Query, rows: readonly Param[][], cols: number, sql: (values: string) => string, after: readonly Param[] = []): Promise<void> {
  for (const [text, params] of statements(q.dialect, rows, cols, sql, after)) await q.later(text, params);
}
