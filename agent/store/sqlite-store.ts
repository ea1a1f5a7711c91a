// size: one class is the whole Store interface over one serialised connection: which lane each
// call takes and which calls share a transaction is the part worth reading together; the SQL of
// each area lives beside it (play-sql, desired-sql, migrations, write-buffer, recovery).
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { SystemClock, type Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import type { AgentEvent, EpochMs, LocalDate, PlayEvent } from '../core/types.js';
import { FreeSpaceFloor } from './free-space.js';
import { Db, type Query } from './db.js';
import { migrate } from './migrations.js';
import { encodeEvent, encodePlayEvent } from '../protocol/encode.js';
import { insertStart, interruptedEnd, playEventOf, rowOf, startOf, type PlayDbRow } from './play-sql.js';
import { keepSidecars, moveAside, readMarker, unusableReason, writeMarker, type StoreReplacement } from './recovery.js';
import type { LedgerEntry, OutboxRow, PlayEnd, PlayRow, PlayStart, Store, StoreHealth } from './store.js';
import type { ApplyResult, DesiredChange, DesiredKind, DesiredState, SourceKey } from '../core/desired.js';
import { applyIfNewerIn, readDesired } from './desired-sql.js';
import { cannotWrite, WriteBuffer, type Pending, type PendingPlay } from './write-buffer.js';

/** Commands older than this are forgotten; a command id replayed after that is refused by its expiresAt anyway. */
const COMMAND_MEMORY_MS = 30 * 86_400_000;
/** Free space in dataDir under which the store reports `degraded` and records `disk-low`. */
export const DEFAULT_MIN_FREE_MB = 50;

export interface SqliteStoreContext {
  file: string;
  log: Logger;
  /**
   * The daemon's open (run): a store that cannot be opened is moved aside and a fresh one made,
   * and a missing one is noticed. Tools (plan, doctor) leave the file as they find it.
   */
  recover?: boolean;
  /** Files whose presence shows this dataDir had a store before (the media index). */
  evidence?: string[];
  clock?: Clock;
  minFreeMB?: number;
}

export class SqliteStore implements Store {
  private db: Db | undefined;
  private readonly file: string;
  private readonly log: Logger;
  private readonly clock: Clock;
  private id = '';
  private replaced: StoreReplacement | undefined;
  private readonly buf: WriteBuffer;
  private floor: FreeSpaceFloor | undefined;
  /** Highest seq and session written, so deferred writes can say what they will get. */
  private seqHigh = 0;
  private sessionHigh = 0;

  constructor(private readonly ctx: SqliteStoreContext) {
    this.file = ctx.file;
    this.log = ctx.log;
    this.clock = ctx.clock ?? new SystemClock();
    this.buf = new WriteBuffer({
      clock: this.clock,
      log: this.log,
      lowMB: () => this.floor?.low(),
      sink: {
        open: () => this.db !== undefined,
        failing: () => void this.floor?.check(),
        write: (p, end) => this.d.tx((q) => this.writeOne(q, p, end), p.kind === 'play' ? 'play' : 'other'),
        recovered: async (spell) => {
          await this.floor?.check();
          await this.recordEvent({ ts: new Date(this.clock.now()).toISOString(), type: 'store-recovered', detail: { ...spell, since: new Date(spell.since).toISOString() } });
        },
      },
    });
  }

  async start(): Promise<void> {
    const disk = this.file !== ':memory:';
    if (disk) mkdirSync(path.dirname(this.file), { recursive: true });
    const recover = disk && this.ctx.recover === true;
    const existed = disk && existsSync(this.file);
    const marker = recover ? await readMarker(this.file) : undefined;
    let db: Db;
    const release = recover && existed ? await keepSidecars(this.file) : async () => undefined;
    try {
      db = await this.open();
      await release();
    } catch (e) {
      const reason = unusableReason(e);
      if (!recover || !reason) throw e;
      const movedTo = await moveAside(this.file, this.clock.now());
      this.log.error({ err: e, reason, movedTo }, 'store cannot be opened: moved aside, starting a fresh one (the day\'s counts start at zero)');
      this.replaced = { reason, error: (e as Error).message, movedTo, ...(marker ? { previousStoreId: marker } : {}) };
      db = await this.open();
    }
    this.db = db;
    const facts = await db.read(async (q) => ({
      id: (await q.get<{ value: string }>(`SELECT value FROM meta WHERE key = 'store_id'`))?.value ?? '',
      seq: (await q.get<{ value: number }>(`SELECT value FROM counters WHERE name = 'play_seq'`))?.value ?? 0,
      session: (await q.get<{ value: number }>(`SELECT value FROM counters WHERE name = 'session'`))?.value ?? 0,
    }));
    this.id = facts.id;
    this.seqHigh = facts.seq;
    this.sessionHigh = facts.session;
    if (recover && !existed && !this.replaced && (marker || (this.ctx.evidence ?? []).some((f) => existsSync(f)))) {
      this.log.error({ previousStoreId: marker }, 'store missing although this dataDir had one: starting a fresh one (the day\'s counts start at zero)');
      this.replaced = { reason: 'missing', ...(marker ? { previousStoreId: marker } : {}) };
    }
    if (recover && marker !== this.id) await writeMarker(this.file, this.id).catch((err: unknown) => this.log.warn({ err }, 'could not write the store-id marker'));
    // The floor is watched by the daemon (and where a floor is asked for): a tool's short-lived
    // open must neither record disk-low nor hold the process open with a timer.
    if (disk && (recover || this.ctx.minFreeMB !== undefined)) {
      this.floor = new FreeSpaceFloor({
        dir: path.dirname(this.file),
        minFreeMB: this.ctx.minFreeMB ?? DEFAULT_MIN_FREE_MB,
        clock: this.clock,
        log: this.log,
        onLow: (freeMB, minFreeMB) => this.recordEvent({ ts: new Date(this.clock.now()).toISOString(), type: 'disk-low', detail: { freeMB, minFreeMB } }),
      });
      await this.floor.start();
    }
  }

  private async open(): Promise<Db> {
    const db = await Db.open(this.file);
    try {
      await db.read(async (q) => {
        // WAL keeps readers off the writer's back; FULL because a Pi loses power without warning
        // and a completed play must not roll back (STACK-NOTES: NORMAL may lose the last commits).
        await q.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;');
        // A truncated file opens and migrates and fails only when a lost page is read: look at every page now.
        const check = await q.all<{ quick_check: string }>('PRAGMA quick_check');
        if (check[0]?.quick_check !== 'ok') {
          throw Object.assign(new Error(`quick_check: ${check.map((r) => r.quick_check).slice(0, 3).join('; ')}`), { code: 'SQLITE_CORRUPT' });
        }
        const v = await migrate(q);
        this.log.debug({ file: this.file, schema: v }, 'store open');
      });
    } catch (e) {
      await db.close().catch(() => undefined);
      throw e;
    }
    return db;
  }

  async stop(): Promise<void> {
    this.floor?.stop();
    this.buf.stop();
    if (this.db && this.buf.queue.length > 0) await this.buf.flush();
    if (this.buf.queue.length > 0) this.log.error({ pending: this.buf.queue.length }, 'store stopping with writes it could not make: they are lost');
    const db = this.db;
    this.db = undefined;
    if (!db) return;
    await db.read((q) => q.exec('PRAGMA wal_checkpoint(TRUNCATE)')).catch(() => undefined);
    await db.close();
  }

  storeId(): string {
    return this.id;
  }

  replacement(): StoreReplacement | undefined {
    return this.replaced;
  }

  health(): StoreHealth {
    return this.buf.health();
  }

  private get d(): Db {
    if (!this.db) throw new Error('store is not started');
    return this.db;
  }

  // --- desired state

  async loadDesired(): Promise<DesiredState> {
    return this.d.read((q) => readDesired(q));
  }

  async appliedVersion(kind: DesiredKind, source: SourceKey): Promise<number> {
    const r = await this.d.read((q) => q.get<{ version: number }>('SELECT version FROM desired WHERE kind = ? AND source = ?', [kind, source]));
    return r?.version ?? 0;
  }

  applyIfNewer(source: SourceKey, change: DesiredChange, at: EpochMs): Promise<ApplyResult> {
    return this.d.tx((q) => applyIfNewerIn(q, source, change, at));
  }

  // --- the key set (PROTOCOL §9 v1.1)

  async loadKeySet(): Promise<{ version: number; envelope: string } | undefined> {
    return (await this.d.read((q) => q.get<{ version: number; envelope: string }>('SELECT version, envelope FROM key_set WHERE id = 1'))) ?? undefined;
  }

  applyKeySetIfNewer(version: number, envelope: string, at: EpochMs): Promise<boolean> {
    return this.d.tx(async (q) => {
      const r = await q.run(
        `INSERT INTO key_set(id, version, envelope, applied_at) VALUES (1, ?, ?, ?)
         ON CONFLICT(id) DO UPDATE SET version = excluded.version, envelope = excluded.envelope, applied_at = excluded.applied_at
         WHERE excluded.version > key_set.version`,
        [version, envelope, at],
      );
      return r.changes === 1;
    });
  }

  // --- plays

  async recordPlayStart(p: PlayStart): Promise<number> {
    if (this.buf.queue.length === 0) {
      try {
        return await this.d.tx((q) => insertStart(q, p), 'play');
      } catch (e) {
        if (!cannotWrite(e)) throw e;
        this.buf.failed(e);
      }
    }
    const handle = this.buf.newHandle();
    this.buf.enqueue({ kind: 'play', handle, start: p });
    return handle;
  }

  async recordPlayEnd(id: number, end: PlayEnd, deviceId: string): Promise<PlayEvent> {
    const waiting = this.buf.playOf(id);
    if (waiting) {
      if (waiting.end) throw new Error(`play ${id} already ended (${waiting.end.end.outcome})`);
      waiting.end = { end, deviceId };
      return this.deferred(waiting);
    }
    const rowId = id < 0 ? this.buf.aliases.get(id) : id;
    if (rowId === undefined) throw new Error(`no play ${id}`);
    if (this.buf.queue.length === 0) {
      try {
        return await this.d.tx((q) => this.closePlay(q, rowId, end, deviceId), 'play');
      } catch (e) {
        if (!cannotWrite(e)) throw e;
        this.buf.failed(e);
      }
    }
    const row = await this.d.read((q) => q.get<PlayDbRow>('SELECT * FROM plays WHERE id = ?', [rowId]));
    if (!row) throw new Error(`no play ${id}`);
    if (row.outcome !== null) throw new Error(`play ${id} already ended (${row.outcome})`);
    const p: PendingPlay = { kind: 'play', handle: rowId, rowId, start: startOf(row), end: { end, deviceId } };
    this.buf.enqueue(p);
    return this.deferred(p);
  }

  /** Closes one open play, numbers it, and queues its event: the caller holds the transaction. */
  private async closePlay(q: Query, id: number, end: PlayEnd, deviceId: string): Promise<PlayEvent> {
    const row = await q.get<PlayDbRow>('SELECT * FROM plays WHERE id = ?', [id]);
    if (!row) throw new Error(`no play ${id}`);
    if (row.outcome !== null) throw new Error(`play ${id} already ended (${row.outcome})`);
    await q.run(`UPDATE counters SET value = value + 1 WHERE name = 'play_seq'`);
    const seq = (await q.get<{ value: number }>(`SELECT value FROM counters WHERE name = 'play_seq'`))?.value ?? 0;
    await q.run('UPDATE plays SET ended_at = ?, duration_ms = ?, outcome = ?, seq = ? WHERE id = ?', [end.endedAt, end.durationMs, end.outcome, seq, id]);
    const played =
      (await q.get<{ n: number }>(
        `SELECT COUNT(*) AS n FROM plays WHERE day = ? AND campaign_id = ? AND outcome = 'completed' AND in_window = 1`,
        [row.day, row.campaign_id],
      ))?.n ?? 0;
    const ev = playEventOf({ deviceId, storeId: this.id }, seq, startOf(row), end, played);
    await q.run('INSERT INTO outbox(kind, payload, created_at) VALUES (?, ?, ?)', ['play', encodePlayEvent(ev), end.endedAt]);
    return ev;
  }

  async closeOpenPlays(at: EpochMs, deviceId: string, targetOf: (campaignId: string, day: LocalDate) => number): Promise<PlayEvent[]> {
    const endOf = (r: PlayDbRow): PlayEnd => ({ ...interruptedEnd(r, at), outcome: 'interrupted', target: targetOf(r.campaign_id, r.day) });
    const waitingRows = new Set(this.buf.plays().map((p) => p.rowId));
    const openRows = async (q: Query): Promise<PlayDbRow[]> =>
      (await q.all<PlayDbRow>('SELECT * FROM plays WHERE outcome IS NULL ORDER BY id')).filter((r) => !waitingRows.has(r.id));
    if (this.buf.queue.length === 0) {
      try {
        return await this.d.tx(async (q) => {
          const out: PlayEvent[] = [];
          for (const r of await openRows(q)) out.push(await this.closePlay(q, r.id, endOf(r), deviceId));
          return out;
        });
      } catch (e) {
        if (!cannotWrite(e)) throw e;
        this.buf.failed(e);
      }
    }
    const out: PlayEvent[] = [];
    for (const r of await this.d.read(openRows)) {
      const p: PendingPlay = { kind: 'play', handle: r.id, rowId: r.id, start: startOf(r), end: { end: endOf(r), deviceId } };
      this.buf.enqueue(p);
      out.push(await this.deferred(p));
    }
    return out;
  }

  async countCompleted(day: LocalDate): Promise<Map<string, number>> {
    const rows = await this.d.read((q) =>
      q.all<{ campaign_id: string; n: number }>(
        `SELECT campaign_id, COUNT(*) AS n FROM plays WHERE day = ? AND outcome = 'completed' AND in_window = 1 GROUP BY campaign_id`,
        [day],
      ),
    );
    const counts = new Map(rows.map((r) => [r.campaign_id, r.n]));
    // Plays the store could not write yet count as they happened: the engine must not replay them.
    for (const p of this.buf.plays()) {
      if (p.start.day === day && p.start.inWindow && p.end?.end.outcome === 'completed') counts.set(p.start.campaignId, (counts.get(p.start.campaignId) ?? 0) + 1);
    }
    return counts;
  }

  async playsForDay(day: LocalDate): Promise<PlayRow[]> {
    const rows = (await this.d.read((q) => q.all<PlayDbRow>('SELECT * FROM plays WHERE day = ? ORDER BY started_at, id', [day]))).map(rowOf);
    const waiting = this.buf.plays().filter((p) => p.start.day === day);
    const out = rows.map((r) => {
      const p = waiting.find((w) => w.rowId === r.id);
      return p?.end ? { ...r, endedAt: p.end.end.endedAt, durationMs: p.end.end.durationMs, outcome: p.end.end.outcome } : r;
    });
    for (const p of waiting) {
      if (p.rowId !== undefined) continue;
      out.push({ id: p.handle, ...p.start, endedAt: p.end?.end.endedAt ?? null, durationMs: p.end?.end.durationMs ?? null, outcome: p.end?.end.outcome ?? null, seq: null });
    }
    return out.sort((a, b) => a.startedAt - b.startedAt);
  }

  // --- writes the store could not make yet

  /** The event a deferred play will be queued with: the seq it will get (plays are numbered in order). */
  private async deferred(p: PendingPlay): Promise<PlayEvent> {
    const end = p.end!;
    const ahead = this.buf.plays().filter((x) => x.end);
    const seq = this.seqHigh + ahead.indexOf(p) + 1;
    const played = (await this.countCompleted(p.start.day)).get(p.start.campaignId) ?? 0;
    void this.buf.flush();
    return playEventOf({ deviceId: end.deviceId, storeId: this.id }, seq, p.start, end.end, played);
  }

  private async writeOne(q: Query, p: Pending, end: PendingPlay['end']): Promise<void> {
    if (p.kind === 'event') {
      await this.insertEvent(q, p.event);
    } else if (p.kind === 'session') {
      await q.run(`UPDATE counters SET value = MAX(value, ?) WHERE name = 'session'`, [p.value]);
    } else {
      let rowId = p.rowId;
      if (rowId === undefined) {
        rowId = await insertStart(q, p.start);
        // Holds only if the transaction commits (a throw below rolls the insert back too).
        q.onCommit(() => {
          p.rowId = rowId;
          this.buf.aliases.set(p.handle, rowId!);
        });
      }
      if (end) {
        const ev = await this.closePlay(q, rowId, end.end, end.deviceId);
        q.onCommit(() => (this.seqHigh = Math.max(this.seqHigh, ev.seq)));
      }
    }
  }

  // --- the per-day ledger

  async recordLedger(entries: LedgerEntry[], at: EpochMs): Promise<void> {
    if (entries.length === 0) return;
    const rows = entries.map((e) => ({ day: e.day, campaignId: e.campaignId, target: e.target, windows: JSON.stringify(e.windows), overridden: e.overridden ? 1 : 0 }));
    // One statement however many campaigns (STACK-NOTES: per-statement cost dominates).
    await this.d.tx((q) =>
      q.run(
        `INSERT INTO day_ledger(day, campaign_id, target, windows, overridden, written_at)
         SELECT json_extract(value, '$.day'), json_extract(value, '$.campaignId'), json_extract(value, '$.target'),
                json_extract(value, '$.windows'), json_extract(value, '$.overridden'), ? FROM json_each(?) WHERE true
         ON CONFLICT(day, campaign_id) DO UPDATE SET target = excluded.target, windows = excluded.windows,
           overridden = excluded.overridden, written_at = excluded.written_at`,
        [at, JSON.stringify(rows)],
      ),
    );
  }

  async ledgerOf(day: LocalDate): Promise<LedgerEntry[]> {
    const rows = await this.d.read((q) =>
      q.all<{ campaign_id: string; target: number; windows: string; overridden: number }>(
        'SELECT campaign_id, target, windows, overridden FROM day_ledger WHERE day = ? ORDER BY campaign_id',
        [day],
      ),
    );
    return rows.map((r) => ({ day, campaignId: r.campaign_id, target: r.target, windows: JSON.parse(r.windows) as LedgerEntry['windows'], overridden: r.overridden === 1 }));
  }

  // --- events and outbox

  async recordEvent(e: AgentEvent): Promise<void> {
    if (this.buf.queue.length === 0) {
      try {
        await this.d.tx((q) => this.insertEvent(q, e));
        return;
      } catch (err) {
        if (!cannotWrite(err)) throw err;
        this.buf.failed(err);
      }
    }
    this.buf.enqueue({ kind: 'event', event: e });
  }

  private async insertEvent(q: Query, e: AgentEvent): Promise<void> {
    await q.run('INSERT INTO outbox(kind, payload, created_at) VALUES (?, ?, ?)', ['event', encodeEvent(e), Date.parse(e.ts) || 0]);
  }

  async outboxPeek(limit: number, afterId = 0, kind?: OutboxRow['kind']): Promise<OutboxRow[]> {
    const rows = await this.d.read((q) =>
      q.all<{ id: number; kind: 'play' | 'event'; payload: string; created_at: number }>(
        kind === undefined
          ? 'SELECT id, kind, payload, created_at FROM outbox WHERE id > ? ORDER BY id LIMIT ?'
          : 'SELECT id, kind, payload, created_at FROM outbox WHERE kind = ? AND id > ? ORDER BY id LIMIT ?',
        kind === undefined ? [afterId, limit] : [kind, afterId, limit],
      ),
    );
    return rows.map((r) => ({ id: r.id, kind: r.kind, payload: r.payload, createdAt: r.created_at }));
  }

  async outboxDelete(ids: number[]): Promise<void> {
    if (ids.length === 0) return;
    await this.d.tx(async (q) => {
      // json_each keeps it one statement however many ids (STACK-NOTES: per-statement cost dominates).
      await q.run('DELETE FROM outbox WHERE id IN (SELECT value FROM json_each(?))', [JSON.stringify(ids)]);
    });
  }

  async outboxCount(): Promise<number> {
    return (await this.d.read((q) => q.get<{ n: number }>('SELECT COUNT(*) AS n FROM outbox')))?.n ?? 0;
  }

  async outboxTrim(max: number): Promise<number> {
    return this.d.tx(async (q) => {
      const n = (await q.get<{ n: number }>('SELECT COUNT(*) AS n FROM outbox'))?.n ?? 0;
      if (n <= max) return 0;
      const cut = async (kind: OutboxRow['kind'], count: number): Promise<number> =>
        count <= 0 ? 0 : (await q.run('DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE kind = ? ORDER BY id LIMIT ?)', [kind, count])).changes;
      const events = await cut('event', n - max);
      return events + (await cut('play', n - max - events));
    });
  }

  /** Bulk insert for benchmarks and tests: one statement per call. */
  async outboxInsertMany(kind: 'play' | 'event', payloads: string[], at: EpochMs): Promise<void> {
    await this.d.tx((q) =>
      q.run(`INSERT INTO outbox(kind, payload, created_at) SELECT ?, value, ? FROM json_each(?)`, [kind, at, JSON.stringify(payloads)]),
    );
  }

  async prunePlays(beforeDay: LocalDate): Promise<number> {
    return (await this.d.tx((q) => q.run('DELETE FROM plays WHERE day < ? AND outcome IS NOT NULL', [beforeDay]))).changes;
  }

  async checkpoint(): Promise<void> {
    await this.d.read((q) => q.exec('PRAGMA wal_checkpoint(TRUNCATE)'));
  }

  // --- counters

  async nextSession(): Promise<number> {
    if (this.buf.queue.length === 0) {
      try {
        const v = await this.d.tx(async (q) => {
          await q.run(`UPDATE counters SET value = value + 1 WHERE name = 'session'`);
          return (await q.get<{ value: number }>(`SELECT value FROM counters WHERE name = 'session'`))?.value ?? 0;
        });
        this.sessionHigh = Math.max(this.sessionHigh, v);
        return v;
      } catch (e) {
        if (!cannotWrite(e)) throw e;
        this.buf.failed(e);
      }
    }
    // The link must still connect (heartbeats tell the NOC the store is full): the session rises in memory.
    this.sessionHigh++;
    this.buf.enqueue({ kind: 'session', value: this.sessionHigh });
    return this.sessionHigh;
  }

  async claimCommand(id: string, at: EpochMs): Promise<boolean> {
    return this.d.tx(async (q) => {
      await q.run('DELETE FROM commands WHERE at < ?', [at - COMMAND_MEMORY_MS]);
      const r = await q.run('INSERT OR IGNORE INTO commands(id, at) VALUES (?, ?)', [id, at]);
      return r.changes === 1;
    });
  }

  async getMeta(key: string): Promise<string | undefined> {
    return (await this.d.read((q) => q.get<{ value: string }>('SELECT value FROM meta WHERE key = ?', [key])))?.value;
  }

  async setMeta(key: string, value: string): Promise<void> {
    await this.d.tx((q) => q.run('INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value', [key, value]));
  }
}
