/** A bound value, in both engines (db.ts re-exports it). */
export type Param = string | number | null;

/**
 * `sql` with each bare `?` (a parameter: not inside a string literal, a quoted identifier or a
 * comment) replaced by `to(n, i)`: `n` counts parameters from 0, `i` is the `?`'s offset in `sql`.
 * The archive's SQL is written with plain `?` for both engines; pg numbers them (pg.ts), and SQLite's
 * held writes (Query.later, db.ts) take them as literals (sqliteLiteral, below).
 */
export function mapParams(sql: string, to: (n: number, i: number) => string): string {
  let out = '';
  let n = 0;
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i]!;
    const close = c === "'" ? "'" : c === '"' ? '"' : c === '-' && sql[i + 1] === '-' ? '\n' : c === '/' && sql[i + 1] === '*' ? '*/' : undefined;
    if (close) {
      const end = sql.indexOf(close, i + (close === "'" || close === '"' ? 1 : 2));
      const stop = end < 0 ? sql.length : end + close.length;
      out += sql.slice(i, stop);
      i = stop - 1; // a doubled '' inside a literal reads as two literals back to back: the same text
      continue;
    }
    out += c === '?' ? to(n++, i) : c;
  }
  return out;
}

/**
 * `v` as SQLite literal text that reads back as exactly what binding `v` stores, or undefined where
 * there is none that is plainly so (the caller binds it instead):
 * - a 32-bit integer: its digits, an INTEGER, which is what node-sqlite3 binds it as;
 * - any other number: none (node-sqlite3 binds it as a REAL, and a REAL literal's rounding would be
 *   SQLite's parser's, not the binding's);
 * - a string without NUL: in single quotes, quotes doubled, SQLite's only escape. A NUL would end
 *   the SQL text sqlite3_exec reads, so a string holding one is bound. A lone surrogate becomes
 *   U+FFFD on the way to UTF-8 whether it is bound or part of the SQL (node's conversion, the same);
 * - null: NULL.
 */
export function sqliteLiteral(v: Param): string | undefined {
  if (v === null) return 'NULL';
  if (typeof v === 'number') return (v | 0) === v ? String(v | 0) : undefined;
  if (v.includes('\u0000')) return undefined;
  return `'${v.replaceAll("'", "''")}'`;
}

/** `sql` with its parameters as literals (sqliteLiteral), or undefined if one has none or the counts differ. */
export function inlineParams(sql: string, params: readonly Param[]): string | undefined {
  let ok = true;
  let used = 0;
  const text = mapParams(sql, (n) => {
    used = n + 1;
    const lit = n < params.length ? sqliteLiteral(params[n]!) : undefined;
    if (lit === undefined) ok = false;
    return lit ?? '?';
  });
  return ok && used === params.length ? text : undefined;
}
