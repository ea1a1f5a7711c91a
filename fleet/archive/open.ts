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
 * Opens the archive named by `target`. SQLite: 16 KiB pages (a new file), a 64 MiB page cache, WAL with
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
      // A 64 MiB page cache for the writer (SQLite's default is 2 MiB: 125 pages of 16 KiB). A
      // backlog in time order puts every screen's next play in every batch, so each batch touches
      // each screen's leaf page in both plays indexes; at 2 MiB those were evicted between batches
      // and read again, and the archive slowed as it grew (issue 11's bench: 14,100-19,200 plays/s,
      // 22-25 % of raw, against 20,600-25,500, 29-33 %, with this). It fills only as pages are used.
      await q.exec('PRAGMA cache_size = -65536');
    });
  } catch (e) {
    await db.close().catch(() => undefined);
    throw e;
  }
  return db;
}
