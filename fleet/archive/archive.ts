import type { Logger } from '../log.js';
import type { Item } from '../ingest/decode.js';
import type { Database, Query } from './db.js';
import { migrate } from './migrations.js';
import { describeTarget, openDatabase } from './open.js';
import { KnownRows, writeBatch } from './batch.js';
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

  /** One transaction for the batch (batch.ts); resolves once it is committed. */
  write(items: readonly Item[], now: Date = new Date()): Promise<BatchStats> {
    return writeBatch(this.conn, items, now.toISOString(), this.ingestId, this.known);
  }

  /** Read access for the report and the tests. */
  read<T>(fn: (q: Query) => Promise<T>): Promise<T> {
    return this.conn.read(fn);
  }
}
