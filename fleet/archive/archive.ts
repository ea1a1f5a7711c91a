import type { Logger } from '../log.js';
import type { Item } from '../ingest/decode.js';
import { Db, type Query } from './db.js';
import { migrate } from './migrations.js';
import { afterPlays, emptyStats, ensureDevice, insertEvent, insertPlay, noteStore, saveHeartbeat, saveStatus, trackSeqs, type BatchStats } from './writes.js';

/**
 * The archive: one SQLite file in WAL mode with synchronous=FULL, so a batch is on disk (power cut
 * included) when `write` resolves, and only then is it acknowledged to the broker. Several ingest
 * processes may share the file: BEGIN IMMEDIATE waits for the other's transaction (busy_timeout).
 */
export class Archive {
  private db: Db | undefined;

  /** `ingestId`: the process's MQTT client id, kept with each play it archived. */
  constructor(readonly file: string, private readonly log: Logger, private readonly ingestId = 'local') {}

  async start(): Promise<void> {
    const db = await Db.open(this.file);
    await db.read(async (q) => {
      await q.exec('PRAGMA busy_timeout = 10000');
      await q.exec('PRAGMA journal_mode = WAL');
      await q.exec('PRAGMA synchronous = FULL');
    });
    const version = await migrate(db);
    this.db = db;
    this.log.info({ file: this.file, schema: version }, 'archive open');
  }

  async stop(): Promise<void> {
    const db = this.db;
    this.db = undefined;
    if (db) await db.close();
  }

  private get conn(): Db {
    if (!this.db) throw new Error('archive is not open');
    return this.db;
  }

  /** The config's groups map replaces the archive's (the report reads groups from the archive). */
  async setGroups(groups: Record<string, string[]>): Promise<void> {
    await this.conn.tx(async (q) => {
      await q.run('DELETE FROM device_groups');
      for (const [g, ids] of Object.entries(groups)) for (const id of ids) await q.run('INSERT OR IGNORE INTO device_groups (group_name, device_id) VALUES (?, ?)', [g, id]);
    });
  }

  /** One transaction for the batch; resolves once it is committed. */
  async write(items: readonly Item[], now: Date = new Date()): Promise<BatchStats> {
    const at = now.toISOString();
    const stats = emptyStats();
    // A batch may hold many heartbeats of one screen: the newest is what the devices row keeps.
    const heartbeats = new Map<string, Item & { kind: 'heartbeat' }>();
    for (const it of items) if (it.kind === 'heartbeat') {
      const had = heartbeats.get(it.deviceId);
      if (!had || had.heartbeat.ts <= it.heartbeat.ts) heartbeats.set(it.deviceId, it);
    }
    await this.conn.tx(async (q) => {
      const seqs = new Map<string, { deviceId: string; storeId: string; seqs: number[] }>();
      const stored = new Set<string>();
      const devices = new Set<string>();
      const newest = new Map<string, Item & { kind: 'play' }>();
      const store = async (deviceId: string, storeId: string, source: string): Promise<void> => {
        const k = `${deviceId}\u0000${storeId}`;
        if (stored.has(k)) return;
        stored.add(k);
        if (await noteStore(q, deviceId, storeId, source, at)) stats.storesReplaced++;
      };
      for (const it of items) {
        if (!devices.has(it.deviceId)) { devices.add(it.deviceId); await ensureDevice(q, it.deviceId, at); }
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
    });
    return stats;
  }

  /** Read access for the report and the tests. */
  read<T>(fn: (q: Query) => Promise<T>): Promise<T> {
    return this.conn.read(fn);
  }
}
