import type { Logger } from '../log.js';
import type { Item } from '../ingest/decode.js';
import type { Database, Query } from './db.js';
import { migrate } from './migrations.js';
import { describeTarget, openDatabase } from './open.js';
import { afterPlays, emptyStats, insertEvent, lockDevices, insertPlay, noteStore, saveHeartbeat, saveStatus, trackSeqs, type BatchStats } from './writes.js';

/**
 * The archive: a SQLite file (WAL, synchronous=FULL) or a PostgreSQL database (`db` a postgres://
 * URL). Either way a batch is durable when `write` resolves (SQLite: on disk, power cut included;
 * pg: its WAL flushed at COMMIT), and only then is it acknowledged to the broker. Several ingest
 * processes may share one archive: SQLite's BEGIN IMMEDIATE waits for the other's transaction
 * (busy_timeout); pg's batches lock their screens' rows (writes.ts lockDevices).
 */
export class Archive {
  private db: Database | undefined;

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

  /** One transaction for the batch; resolves once it is committed. */
  async write(items: readonly Item[], now: Date = new Date()): Promise<BatchStats> {
    const at = now.toISOString();
    // A batch may hold many heartbeats of one screen: the newest is what the devices row keeps.
    const heartbeats = new Map<string, Item & { kind: 'heartbeat' }>();
    for (const it of items) if (it.kind === 'heartbeat') {
      const had = heartbeats.get(it.deviceId);
      if (!had || had.heartbeat.ts <= it.heartbeat.ts) heartbeats.set(it.deviceId, it);
    }
    // Everything the transaction counts starts inside it: pg runs it again after a deadlock or
    // serialization abort, and a retry must not count twice.
    return this.conn.tx(async (q) => {
      const stats = emptyStats();
      await lockDevices(q, [...new Set(items.map((it) => it.deviceId))], at);
      const seqs = new Map<string, { deviceId: string; storeId: string; seqs: number[] }>();
      const stored = new Set<string>();
      const newest = new Map<string, Item & { kind: 'play' }>();
      const store = async (deviceId: string, storeId: string, source: string): Promise<void> => {
        const k = `${deviceId}\u0000${storeId}`;
        if (stored.has(k)) return;
        stored.add(k);
        if (await noteStore(q, deviceId, storeId, source, at)) stats.storesReplaced++;
      };
      for (const it of items) {
        switch (it.kind) {
          case 'play': {
            const p = it.play;
            await store(p.deviceId, p.storeId, 'play');
            if (!(await insertPlay(q, p, it.raw, at, this.ingestId))) { stats.duplicates++; break; }
            stats.plays++;
            const c = `${p.deviceId}\u0000${p.day}\u0000${p.campaignId}`;
            const had = newest.get(c);
            if (!had || had.play.endedAt <= p.endedAt) newest.set(c, it);
            const k = `${p.deviceId}\u0000${p.storeId}`;
            const s = seqs.get(k) ?? { deviceId: p.deviceId, storeId: p.storeId, seqs: [] };
            s.seqs.push(p.seq);
            seqs.set(k, s);
            break;
          }
          case 'event':
            if (await insertEvent(q, it.deviceId, it.event, it.raw, at)) stats.events++;
            break;
          case 'heartbeat':
            if (it.heartbeat.storeId) await store(it.deviceId, it.heartbeat.storeId, 'heartbeat');
            if (heartbeats.get(it.deviceId) === it) { await saveHeartbeat(q, it.heartbeat, it.raw); stats.heartbeats++; }
            break;
          case 'status':
            if (it.status.online) await store(it.deviceId, it.status.storeId, 'status');
            await saveStatus(q, it.deviceId, it.status, it.raw, at);
            stats.statuses++;
            break;
        }
      }
      await afterPlays(q, [...newest.values()].map((n) => n.play));
      for (const s of seqs.values()) stats.gapsOpened += await trackSeqs(q, s.deviceId, s.storeId, s.seqs, at);
      return stats;
    });
  }

  /** Read access for the report and the tests. */
  read<T>(fn: (q: Query) => Promise<T>): Promise<T> {
    return this.conn.read(fn);
  }
}
