import { Db, type Database } from './db.js';
import { PgDb } from './pg.js';

/** `db` in fleet.json and `--db`: a postgres:// (or postgresql://) URL, else a SQLite file path. */
export const isPostgresUrl = (target: string): boolean => /^postgres(ql)?:\/\//i.test(target);

/** The URL without its password, for logs and messages. */
export function describeTarget(target: string): string {
  if (!isPostgresUrl(target)) return target;
  try {
    const u = new URL(target);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

/**
 * Opens the archive named by `target`. SQLite: 16 KiB pages (a new file), WAL with
 * synchronous=FULL (a commit is on disk, power cut included) and a 10 s busy timeout for a second
 * process's transaction; `readOnly` opens the file read-only (the report beside a live ingest). PostgreSQL: a pool; `onError` hears an idle
 * connection's failure.
 */
export async function openDatabase(target: string, opts: { readOnly?: boolean; onError?: (e: Error) => void } = {}): Promise<Database> {
  if (isPostgresUrl(target)) return PgDb.open(target, opts.onError);
  const db = await Db.open(target, opts.readOnly ? { readOnly: true } : {});
  try {
    await db.read(async (q) => {
      await q.exec('PRAGMA busy_timeout = 10000');
      if (opts.readOnly) return;
      // 16 KiB pages, for a new file only (SQLite ignores it once the file has any): a 1,000-play
      // batch then writes about the same bytes to the WAL in 54 frames instead of 200, and SQLite
      // took 10-20 % less CPU a play than at 4 KiB (issue 11's bench); an older archive keeps its pages.
      await q.exec('PRAGMA page_size = 16384');
      await q.exec('PRAGMA journal_mode = WAL');
      await q.exec('PRAGMA synchronous = FULL');
    });
  } catch (e) {
    await db.close().catch(() => undefined);
    throw e;
  }
  return db;
}
