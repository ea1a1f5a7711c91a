import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../core/log.js';
import type { AgentEvent, Assignment, EpochMs, LocalDate, Outcome, Override, PlayEvent } from '../core/types.js';
import { Db, type Query } from './db.js';
import { migrate } from './migrations.js';
import type { DesiredDoc, DesiredKind, DesiredState, LedgerEntry, OutboxRow, PlayEnd, PlayRow, PlayStart, SourceKey, Store } from './store.js';

interface PlayDbRow {
  id: number;
  campaign_id: string;
  media_sha256: string;
  day: string;
  scheduled_at: number;
  started_at: number;
  in_window: number;
  display: string;
  clock_synced: number;
  ended_at: number | null;
  duration_ms: number | null;
  outcome: Outcome | null;
  seq: number | null;
}

const iso = (t: EpochMs): string => new Date(t).toISOString();

/** Commands older than this are forgotten; a command id replayed after that is refused by its expiresAt anyway. */
const COMMAND_MEMORY_MS = 30 * 86_400_000;

export class SqliteStore implements Store {
  private db: Db | undefined;
  private readonly file: string;
  private readonly log: Logger;

  constructor(ctx: { file: string; log: Logger }) {
    this.file = ctx.file;
    this.log = ctx.log;
  }

  async start(): Promise<void> {
    if (this.file !== ':memory:') mkdirSync(path.dirname(this.file), { recursive: true });
    const db = await Db.open(this.file);
    await db.read(async (q) => {
      // WAL keeps readers off the writer's back; FULL because a Pi loses power without warning
      // and a completed play must not roll back (STACK-NOTES: NORMAL may lose the last commits).
      await q.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;');
      const v = await migrate(q);
      this.log.debug({ file: this.file, schema: v }, 'store open');
    });
    this.db = db;
  }

  async stop(): Promise<void> {
    const db = this.db;
    this.db = undefined;
    if (!db) return;
    await db.read((q) => q.exec('PRAGMA wal_checkpoint(TRUNCATE)')).catch(() => undefined);
    await db.close();
  }

  private get d(): Db {
    if (!this.db) throw new Error('store is not started');
    return this.db;
  }

  // --- desired state

  async loadDesired(): Promise<DesiredState> {
    const rows = await this.d.read((q) =>
      q.all<{ kind: DesiredKind; source: string; version: number; doc: string | null; applied_at: number }>(
        'SELECT kind, source, version, doc, applied_at FROM desired ORDER BY kind, source',
      ),
    );
    const out: DesiredState = { assignments: [], overrides: [] };
    for (const r of rows) {
      const base = { source: r.source, version: r.version, appliedAt: r.applied_at };
      if (r.kind === 'assignment') out.assignments.push({ ...base, doc: r.doc === null ? null : (JSON.parse(r.doc) as Assignment) } as DesiredDoc<Assignment>);
      else out.overrides.push({ ...base, doc: r.doc === null ? null : (JSON.parse(r.doc) as Override) } as DesiredDoc<Override>);
    }
    return out;
  }

  async appliedVersion(kind: DesiredKind, source: SourceKey): Promise<number> {
    const r = await this.d.read((q) => q.get<{ version: number }>('SELECT version FROM desired WHERE kind = ? AND source = ?', [kind, source]));
    return r?.version ?? 0;
  }

  async applyDesired(kind: DesiredKind, source: SourceKey, version: number, doc: Assignment | Override | null, at: EpochMs): Promise<void> {
    await this.d.tx((q) =>
      q.run(
        `INSERT INTO desired(kind, source, version, doc, applied_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(kind, source) DO UPDATE SET version = MAX(version, excluded.version), doc = excluded.doc, applied_at = excluded.applied_at`,
        [kind, source, version, doc === null ? null : JSON.stringify(doc), at],
      ),
    );
  }

  // --- plays

  async recordPlayStart(p: PlayStart): Promise<number> {
    const r = await this.d.tx((q) =>
      q.run(
        `INSERT INTO plays(campaign_id, media_sha256, day, scheduled_at, started_at, in_window, display, clock_synced)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        [p.campaignId, p.mediaSha256, p.day, p.scheduledAt, p.startedAt, p.inWindow ? 1 : 0, p.display, p.clockSynced ? 1 : 0],
      ),
    );
    return r.lastID;
  }

  async recordPlayEnd(id: number, end: PlayEnd, deviceId: string): Promise<PlayEvent> {
    return this.d.tx((q) => this.closePlay(q, id, end, deviceId));
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
    const ev: PlayEvent = {
      eventId: `${deviceId}:${seq}`,
      seq,
      deviceId,
      campaignId: row.campaign_id,
      mediaSha256: row.media_sha256,
      day: row.day,
      scheduledAt: iso(row.scheduled_at),
      startedAt: iso(row.started_at),
      endedAt: iso(end.endedAt),
      durationMs: end.durationMs,
      outcome: end.outcome,
      inWindow: row.in_window === 1,
      played,
      target: end.target,
      display: row.display as PlayEvent['display'],
      clockSynced: row.clock_synced === 1,
    };
    await q.run('INSERT INTO outbox(kind, payload, created_at) VALUES (?, ?, ?)', ['play', JSON.stringify(ev), end.endedAt]);
    return ev;
  }

  async closeOpenPlays(at: EpochMs, deviceId: string, targetOf: (campaignId: string, day: LocalDate) => number): Promise<PlayEvent[]> {
    return this.d.tx(async (q) => {
      const open = await q.all<PlayDbRow>('SELECT * FROM plays WHERE outcome IS NULL ORDER BY id');
      const out: PlayEvent[] = [];
      for (const r of open) {
        const endedAt = Math.max(at, r.started_at);
        out.push(
          await this.closePlay(q, r.id, { endedAt, durationMs: endedAt - r.started_at, outcome: 'interrupted', target: targetOf(r.campaign_id, r.day) }, deviceId),
        );
      }
      return out;
    });
  }

  async countCompleted(day: LocalDate): Promise<Map<string, number>> {
    const rows = await this.d.read((q) =>
      q.all<{ campaign_id: string; n: number }>(
        `SELECT campaign_id, COUNT(*) AS n FROM plays WHERE day = ? AND outcome = 'completed' AND in_window = 1 GROUP BY campaign_id`,
        [day],
      ),
    );
    return new Map(rows.map((r) => [r.campaign_id, r.n]));
  }

  async playsForDay(day: LocalDate): Promise<PlayRow[]> {
    const rows = await this.d.read((q) => q.all<PlayDbRow>('SELECT * FROM plays WHERE day = ? ORDER BY started_at, id', [day]));
    return rows.map((r) => ({
      id: r.id,
      campaignId: r.campaign_id,
      mediaSha256: r.media_sha256,
      day: r.day,
      scheduledAt: r.scheduled_at,
      startedAt: r.started_at,
      inWindow: r.in_window === 1,
      display: r.display as PlayRow['display'],
      clockSynced: r.clock_synced === 1,
      endedAt: r.ended_at,
      durationMs: r.duration_ms,
      outcome: r.outcome,
      seq: r.seq,
    }));
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
    await this.d.tx((q) => q.run('INSERT INTO outbox(kind, payload, created_at) VALUES (?, ?, ?)', ['event', JSON.stringify(e), Date.parse(e.ts) || 0]));
  }

  async outboxPeek(limit: number, afterId = 0): Promise<OutboxRow[]> {
    const rows = await this.d.read((q) =>
      q.all<{ id: number; kind: 'play' | 'event'; payload: string; created_at: number }>(
        'SELECT id, kind, payload, created_at FROM outbox WHERE id > ? ORDER BY id LIMIT ?',
        [afterId, limit],
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
      const r = await q.run('DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)', [n - max]);
      return r.changes;
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
    return this.d.tx(async (q) => {
      await q.run(`UPDATE counters SET value = value + 1 WHERE name = 'session'`);
      return (await q.get<{ value: number }>(`SELECT value FROM counters WHERE name = 'session'`))?.value ?? 0;
    });
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
