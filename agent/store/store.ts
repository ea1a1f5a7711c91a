import type { StoreReplacement } from './recovery.js';
import type { AgentEvent, DisplayState, EpochMs, LocalDate, Outcome, PlayEvent } from '../core/types.js';
import type { ApplyResult, DesiredChange, DesiredKind, DesiredState, SourceKey } from '../core/desired.js';

export interface PlayStart {
  campaignId: string;
  mediaSha256: string;
  day: LocalDate;
  scheduledAt: EpochMs;
  startedAt: EpochMs;
  inWindow: boolean;
  display: DisplayState;
  clockSynced: boolean;
  /** The clip's expected length: an interrupted play's endedAt is capped at startedAt + this. */
  expectedMs?: number;
}

export interface PlayEnd {
  endedAt: EpochMs;
  durationMs: number;
  outcome: Outcome;
  /** The campaign's target for that day, reported in the event. */
  target: number;
}

export interface PlayRow extends PlayStart {
  id: number;
  endedAt: EpochMs | null;
  durationMs: number | null;
  outcome: Outcome | null;
  seq: number | null;
}

/** A campaign's target and windows for a local day, as last planned that day (PROTOCOL v1.1 §7). */
export interface LedgerEntry {
  day: LocalDate;
  campaignId: string;
  target: number;
  /** The day's windows as instants (after overrides). */
  windows: Array<{ start: EpochMs; end: EpochMs }>;
  overridden: boolean;
}

export interface OutboxRow {
  id: number;
  /** Topic suffix under `{p}/device/{id}/`: `play` or `event`. */
  kind: 'play' | 'event';
  payload: string;
  createdAt: EpochMs;
}

/**
 * Whether the store can write (heartbeat `store`). `full`: writes fail (SQLITE_FULL, IOERR, a
 * read-only card) and `pending` writes wait in memory; `degraded`: writes work but dataDir's free
 * space is under the floor.
 */
export interface StoreHealth {
  state: 'ok' | 'full' | 'degraded';
  pending: number;
  lastError?: string;
  /** When the current failing spell began (ISO). */
  since?: string;
  freeMB?: number;
}

/**
 * The agent's only durable state: one SQLite file in dataDir (WAL, synchronous=FULL).
 * Every method is one transaction; a crash at any instant leaves a consistent file.
 * Play events and agent events enter the outbox in the same transaction that records them,
 * so nothing recorded can fail to be sent, and nothing sent was not recorded.
 */
export interface Store {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The random id made with this store (PROTOCOL v1.1 §8); valid after start(). */
  storeId(): string;
  /** Set when start() found the store unusable or missing and made a fresh one. */
  replacement(): StoreReplacement | undefined;
  health(): StoreHealth;

  // --- desired state (PROTOCOL §3: versions monotonic per topic, surviving restarts)
  loadDesired(): Promise<DesiredState>;
  /** Last applied version for that topic, or 0. */
  appliedVersion(kind: DesiredKind, source: SourceKey): Promise<number>;
  /**
   * Checks and writes in one transaction, so two documents on one topic can never both win: a
   * document is written only when its version is above the topic's (or the topic has none); a
   * clear only when an override is in force there (its version stays, so an older one cannot
   * come back). Returns what the topic held before and the whole state after.
   */
  applyIfNewer(source: SourceKey, change: DesiredChange, at: EpochMs): Promise<ApplyResult>;

  // --- the §9 key set (issue 10 item 3): the newest applied envelope, kept as received
  /** The stored key set envelope and its version, or undefined. */
  loadKeySet(): Promise<{ version: number; envelope: string } | undefined>;
  /** Writes the envelope only when `version` is above the stored one, in one transaction; true when written. */
  applyKeySetIfNewer(version: number, envelope: string, at: EpochMs): Promise<boolean>;

  // --- plays (PROTOCOL §6, §8)
  /** Records a started play; returns its row id. */
  recordPlayStart(p: PlayStart): Promise<number>;
  /**
   * Closes a play, gives it the next play `seq`, and queues its play event in the outbox,
   * all in one transaction. Returns the event as queued. When the store cannot write, the play
   * is kept in memory (counted at once) and written in order later; the event returned then
   * carries the seq it will get.
   */
  recordPlayEnd(id: number, end: PlayEnd, deviceId: string): Promise<PlayEvent>;
  /** Closes every play left open by a crash or power cut as `interrupted` (endedAt = `at`, capped at the expected end). */
  closeOpenPlays(at: EpochMs, deviceId: string, targetOf: (campaignId: string, day: LocalDate) => number): Promise<PlayEvent[]>;
  /** Completed, in-window plays per campaign for a local day. */
  countCompleted(day: LocalDate): Promise<Map<string, number>>;
  playsForDay(day: LocalDate): Promise<PlayRow[]>;

  // --- the per-day ledger (PROTOCOL v1.1 §7)
  /** Writes (replaces) these days' entries of these campaigns, in one transaction. */
  recordLedger(entries: LedgerEntry[], at: EpochMs): Promise<void>;
  /** The ledger of a local day, by campaign id order; empty when nothing was planned that day. */
  ledgerOf(day: LocalDate): Promise<LedgerEntry[]>;

  // --- agent events (the `event` topic)
  recordEvent(e: AgentEvent): Promise<void>;

  // --- outbox (store-and-forward, PROTOCOL §8)
  /** Oldest first; with `kind`, only that lane's rows (PROTOCOL v1.1 §8: two independent queues). */
  outboxPeek(limit: number, afterId?: number, kind?: OutboxRow['kind']): Promise<OutboxRow[]>;
  outboxDelete(ids: number[]): Promise<void>;
  outboxCount(): Promise<number>;
  /**
   * Drops rows beyond `max`, oldest `event` rows first and play rows only when events alone
   * cannot make room (proof-of-play is what the NOC bills on); returns how many were dropped.
   */
  outboxTrim(max: number): Promise<number>;

  /**
   * Deletes closed plays of local days before `beforeDay` (their events left through the outbox
   * long ago) and returns how many. Open plays and the outbox are never touched.
   */
  prunePlays(beforeDay: LocalDate): Promise<number>;
  /** Folds the WAL back into the database file (housekeeping). */
  checkpoint(): Promise<void>;

  // --- counters and small facts
  /** Increments and returns the MQTT connection session counter. */
  nextSession(): Promise<number>;
  /** Records a command id; false when it was seen before (at-most-once execution). */
  claimCommand(id: string, at: EpochMs): Promise<boolean>;
  getMeta(key: string): Promise<string | undefined>;
  setMeta(key: string, value: string): Promise<void>;
}
