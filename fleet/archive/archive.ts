import type { Logger } from '../log.js';
import type { Item } from '../ingest/decode.js';
import type { Database, Query } from './db.js';
import { migrate } from './migrations.js';
import { describeTarget, openDatabase } from './open.js';
import { buildAhead, KnownRows, writeBatch, type Ahead } from './batch.js';
import type { BatchStats } from './writes.js';

/**
 * The archive: a SQLite file (WAL, synchronous=FULL) or a PostgreSQL database (`db` a postgres://
 * URL). Either way a batch is durable when `write` resolves (SQLite: on disk, power cut included;
 * pg: its WAL flushed at COMMIT), and only then is it acknowledged to the broker. Several ingest
 * processes may share one archive: SQLite's BEGIN IMMEDIATE waits for the other's transaction
 * (busy_timeout); pg's batches lock their screens' rows (writes.ts lockDevices).
 */
export class Archive {
  private db: Database | undefined;
  private readonly known = new KnownRows();
  /** The next batch's plays' INSERT, built while the last batch committed (write's `next`). */
  private ahead: Ahead | undefined;

  /** `target`: a SQLite file or a postgres:// URL. `ingestId`: the process's MQTT client id, kept with each play it archived. */
  constructor(readonly target: string, private readonly log: Logger, private readonly ingestId = 'local') {}

  async start(): Promise<void> {
    const db = await openDatabase(this.target, { onError: (e) => this.log.warn({ err: e.message }, 'idle archive connection failed') });
    try {
      const version = await migrate(db);
      this.db = db;
      this.log.info({ db: describeTarget(this.target), engine: db.dialect, schema: version }, 'archive open');
    } catch (e) {
      await db.close().catch(() => undefined);
      throw e;
    }
  }

  get dialect(): Database['dialect'] {
    return this.conn.dialect;
  }

  async stop(): Promise<void> {
    const db = this.db;
    this.db = undefined;
    if (db) await db.close();
  }

  private get conn(): Database {
    if (!this.db) throw new Error('archive is not open');
    return this.db;
  }

  /** The config's groups map replaces the archive's (the report reads groups from the archive). */
  async setGroups(groups: Record<string, string[]>): Promise<void> {
    await this.conn.tx(async (q) => {
      // pg: two processes starting together must not interleave their delete-and-insert (the map
      // would be the union of both). SQLite's BEGIN IMMEDIATE already excludes the other writer.
      if (q.dialect === 'postgres') await q.exec('LOCK TABLE device_groups IN SHARE ROW EXCLUSIVE MODE');
      await q.run('DELETE FROM device_groups');
      for (const [g, ids] of Object.entries(groups)) for (const id of ids) await q.run('INSERT INTO device_groups (group_name, device_id) VALUES (?, ?) ON CONFLICT DO NOTHING', [g, id]);
    });
  }

  /**
   * One transaction for the batch (batch.ts); resolves once it is committed. `next`: asked once this
   * batch's COMMIT is sent, for the batch that will follow it if that one is already full; its plays'
   * INSERT is then built and bound while this one commits, and used when `write` is called with that
   * very array (its plays' received_at is then when it was built, not `now`). Why: on SQLite that
   * work took ~3 ms of the event loop between BEGIN and the INSERT, with SQLite waiting on it, and
   * it now happens while the loop would wait for the COMMIT (issue 11's bench).
   */
  write(items: readonly Item[], now: Date = new Date(), next?: () => readonly Item[] | undefined): Promise<BatchStats> {
    const db = this.conn;
    const ahead = this.ahead?.items === items ? this.ahead : undefined;
    this.ahead = undefined;
    // Only where the engine can bind ahead (SQLite): on pg, asking for the next batch would only
    // fix it early for nothing.
    const build = next && db.prebind && ((): void => {
      try {
        const n = next();
        if (n && n.length > 0) this.ahead = buildAhead(db, n, new Date().toISOString(), this.ingestId);
      } catch (e) {
        // Only a head start lost: that batch builds its INSERT in its own turn.
        this.log.warn({ err: (e as Error).message }, 'building the next batch ahead failed');
      }
    });
    return writeBatch(db, items, ahead?.at ?? now.toISOString(), this.ingestId, this.known, { ...(ahead ? { built: ahead.stmts } : {}), ...(build ? { committing: build } : {}) });
  }

  /** Read access for the report and the tests. */
  read<T>(fn: (q: Query) => Promise<T>): Promise<T> {
    return this.conn.read(fn);
  }
}
