import type { EpochMs, Outcome, PlayEvent } from '../core/types.js';
import { playEvent } from '../protocol/outbound.js';
import type { Query } from './db.js';
import type { PlayEnd, PlayRow, PlayStart } from './store.js';

// The play rows' SQL, shared by the direct path and the deferred writes of a store that could
// not write for a while (both must number and queue a play exactly the same way).

export interface PlayDbRow {
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
  expected_ms: number | null;
}

export async function insertStart(q: Query, p: PlayStart): Promise<number> {
  const r = await q.run(
    `INSERT INTO plays(campaign_id, media_sha256, day, scheduled_at, started_at, in_window, display, clock_synced, expected_ms)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [p.campaignId, p.mediaSha256, p.day, p.scheduledAt, p.startedAt, p.inWindow ? 1 : 0, p.display, p.clockSynced ? 1 : 0, p.expectedMs ?? null],
  );
  return r.lastID;
}

export function startOf(r: PlayDbRow): PlayStart {
  return {
    campaignId: r.campaign_id,
    mediaSha256: r.media_sha256,
    day: r.day,
    scheduledAt: r.scheduled_at,
    startedAt: r.started_at,
    inWindow: r.in_window === 1,
    display: r.display as PlayRow['display'],
    clockSynced: r.clock_synced === 1,
    ...(r.expected_ms !== null ? { expectedMs: r.expected_ms } : {}),
  };
}

export function rowOf(r: PlayDbRow): PlayRow {
  return { id: r.id, ...startOf(r), endedAt: r.ended_at, durationMs: r.duration_ms, outcome: r.outcome, seq: r.seq };
}

/** The play event of a closed play, exactly as queued: the protocol spells it (PROTOCOL v1.1 §8). */
export function playEventOf(ids: { deviceId: string; storeId: string }, seq: number, s: PlayStart, end: PlayEnd, played: number): PlayEvent {
  return playEvent({
    ...ids, seq,
    campaignId: s.campaignId, mediaSha256: s.mediaSha256, day: s.day,
    scheduledAt: s.scheduledAt, startedAt: s.startedAt, endedAt: end.endedAt, durationMs: end.durationMs, outcome: end.outcome,
    inWindow: s.inWindow, played, target: end.target, display: s.display, clockSynced: s.clockSynced,
  });
}

/**
 * How a play left open by a crash or power cut ended: at the restart, but never later than its
 * expected end (PROTOCOL v1.1 §8), so a restart hours after a power cut does not stretch it.
 */
export function interruptedEnd(r: { started_at: number; expected_ms: number | null }, at: EpochMs): { endedAt: EpochMs; durationMs: number } {
  const restart = Math.max(at, r.started_at);
  const endedAt = r.expected_ms !== null ? Math.min(restart, r.started_at + r.expected_ms) : restart;
  return { endedAt, durationMs: endedAt - r.started_at };
}
