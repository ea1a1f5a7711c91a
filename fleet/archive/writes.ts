import { createHash } from 'node:crypto';
import type { AgentEvent, Compliance, Heartbeat, PlayEvent, Status } from '../../agent/protocol/index.js';
import type { Query } from './db.js';
import { applySeqs, type Gap } from './seq.js';

// The statements of one ingest batch, each run inside the batch's transaction (archive.ts).

/** What a batch changed, for logs and tests. */
export interface BatchStats {
  plays: number;
  duplicates: number;
  events: number;
  heartbeats: number;
  statuses: number;
  gapsOpened: number;
  storesReplaced: number;
}

export const emptyStats = (): BatchStats => ({ plays: 0, duplicates: 0, events: 0, heartbeats: 0, statuses: 0, gapsOpened: 0, storesReplaced: 0 });

/**
 * Makes sure every device of a batch has its row, then, on PostgreSQL, locks those rows in device-id
 * order for the rest of the transaction. Why: several ingest processes on one pg database receive
 * the same screens' messages (the shared subscription deals them round robin), and a batch's
 * seq-gap bookkeeping (trackSeqs) is read-modify-write over (device, store): under READ COMMITTED
 * two batches would both read the same max_seq and one's gaps would be lost. The device row is the
 * screen's mutex: a second batch touching the screen waits for the first's COMMIT, then reads what
 * it wrote. (The batch's later UPDATEs of devices and compliance rows would lock too, but in message
 * order: two batches naming screens in opposite orders then deadlock, pg aborts one after its 1 s
 * deadlock_timeout and PgDb.tx runs it again.) Taking all of a batch's locks up front and in one
 * order means no cycle, while batches about different screens run side by side. SERIALIZABLE would
 * abort and retry the loser of every overlap instead, which with round robin is nearly every batch.
 * SQLite needs none of it: BEGIN IMMEDIATE holds the whole file.
 */
export async function lockDevices(q: Query, ids: readonly string[], at: string): Promise<void> {
  const sorted = [...ids].sort();
  if (q.dialect === 'sqlite') {
    for (const id of sorted) await q.run('INSERT INTO devices (device_id, first_seen_at) VALUES (?, ?) ON CONFLICT DO NOTHING', [id, at]);
    return;
  }
  const list = JSON.stringify(sorted);
  await q.run('INSERT INTO devices (device_id, first_seen_at) SELECT d, ?::text FROM json_array_elements_text(?::json) AS d ORDER BY d ON CONFLICT DO NOTHING', [at, list]);
  await q.all('SELECT device_id FROM devices WHERE device_id IN (SELECT json_array_elements_text(?::json)) ORDER BY device_id FOR UPDATE', [list]);
}

/** Records a storeId seen for a device; a new one beside an older one is a replaced store. True if so. */
export async function noteStore(q: Query, deviceId: string, storeId: string, source: string, at: string): Promise<boolean> {
  const r = await q.run('INSERT INTO stores (device_id, store_id, first_seen_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING', [deviceId, storeId, at]);
  if (r.changes === 0) return false;
  const prev = await q.get<{ store_id: string }>(
    // Two stores first seen in one batch share first_seen_at: the tie is broken by id, in both engines
    // (SQLite's rowid, which broke it before, does not exist in pg).
    'SELECT store_id FROM stores WHERE device_id = ? AND store_id <> ? ORDER BY first_seen_at DESC, store_id DESC LIMIT 1',
    [deviceId, storeId],
  );
  if (!prev) return false;
  await q.run('INSERT INTO store_changes (device_id, previous_store_id, store_id, source, seen_at) VALUES (?, ?, ?, ?, ?)', [deviceId, prev.store_id, storeId, source, at]);
  return true;
}

/** The latest word on (device, day, campaign) wins; a play event says nothing of onTrack. */
async function upsertCompliance(q: Query, deviceId: string, c: Omit<Compliance, 'onTrack'> & { onTrack: boolean | null }, asOf: string): Promise<void> {
  await q.run(
    `INSERT INTO compliance (device_id, day, campaign_id, played, target, on_track, as_of) VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (device_id, day, campaign_id) DO UPDATE SET played = excluded.played, target = excluded.target,
       on_track = COALESCE(excluded.on_track, compliance.on_track), as_of = excluded.as_of
     WHERE excluded.as_of >= compliance.as_of`,
    [deviceId, c.day, c.campaignId, c.played, c.target, c.onTrack === null ? null : Number(c.onTrack), asOf],
  );
}

/** Once by eventId (ON CONFLICT DO NOTHING): true when the play is new to the archive (then afterPlays). */
export async function insertPlay(q: Query, p: PlayEvent, raw: string, at: string, ingestId: string): Promise<boolean> {
  const r = await q.run(
    `INSERT INTO plays (event_id, device_id, store_id, seq, campaign_id, day, started_at, ended_at, duration_ms, outcome, in_window, played, target, payload, received_at, ingest_id)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    [p.eventId, p.deviceId, p.storeId, p.seq, p.campaignId, p.day, p.startedAt, p.endedAt, p.durationMs, p.outcome, Number(p.inWindow), p.played, p.target, raw, at, ingestId],
  );
  return r.changes > 0;
}

/** After a batch's plays: the newest play per (device, day, campaign) speaks for its plan, the newest per device dates it. */
export async function afterPlays(q: Query, newest: Iterable<PlayEvent>): Promise<void> {
  const last = new Map<string, string>();
  for (const p of newest) {
    await upsertCompliance(q, p.deviceId, { campaignId: p.campaignId, day: p.day, played: p.played, target: p.target, onTrack: null }, p.endedAt);
    if ((last.get(p.deviceId) ?? '') < p.endedAt) last.set(p.deviceId, p.endedAt);
  }
  for (const [id, at] of last) await q.run('UPDATE devices SET last_play_at = ? WHERE device_id = ? AND (last_play_at IS NULL OR last_play_at < ?)', [at, id, at]);
}

/**
 * Folds newly archived seqs of one (device, store) into its max and gaps; returns how many gaps
 * opened. Read-modify-write: the caller holds the device's lock (lockDevices), so no other batch
 * changes these rows between the reads and the writes.
 */
export async function trackSeqs(q: Query, deviceId: string, storeId: string, seqs: number[], at: string): Promise<number> {
  const row = await q.get<{ max_seq: number | null }>('SELECT max_seq FROM stores WHERE device_id = ? AND store_id = ?', [deviceId, storeId]);
  const gaps = await q.all<Gap & { detected_at: string }>('SELECT lo, hi, detected_at FROM seq_gaps WHERE device_id = ? AND store_id = ? ORDER BY lo', [deviceId, storeId]);
  const next = applySeqs({ maxSeq: row?.max_seq ?? 0, gaps }, seqs);
  await q.run('UPDATE stores SET max_seq = ? WHERE device_id = ? AND store_id = ?', [next.maxSeq, deviceId, storeId]);
  await q.run('DELETE FROM seq_gaps WHERE device_id = ? AND store_id = ?', [deviceId, storeId]);
  let opened = 0;
  for (const g of next.gaps) {
    // A gap split by a late arrival keeps the detection time of the gap it came from.
    const from = gaps.find((o) => o.lo <= g.lo && g.hi <= o.hi);
    if (!from) opened++;
    await q.run('INSERT INTO seq_gaps (device_id, store_id, lo, hi, detected_at) VALUES (?, ?, ?, ?, ?)', [deviceId, storeId, g.lo, g.hi, from?.detected_at ?? at]);
  }
  return opened;
}

export async function insertEvent(q: Query, deviceId: string, e: AgentEvent, raw: string, at: string): Promise<boolean> {
  const digest = createHash('sha256').update(raw).digest('hex');
  const r = await q.run('INSERT INTO events (device_id, digest, ts, type, detail, received_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING', [
    deviceId, digest, e.ts, e.type, JSON.stringify(e.detail ?? null), at,
  ]);
  return r.changes > 0;
}

export async function saveHeartbeat(q: Query, hb: Heartbeat, raw: string): Promise<void> {
  await q.run(
    `UPDATE devices SET heartbeat_json = ?, heartbeat_at = ?, store_id = COALESCE(?, store_id)
     WHERE device_id = ? AND (heartbeat_at IS NULL OR heartbeat_at <= ?)`,
    [raw, hb.ts, hb.storeId ?? null, hb.deviceId, hb.ts],
  );
  for (const c of hb.compliance ?? []) await upsertCompliance(q, hb.deviceId, c, hb.ts);
}

/** The retained status: the highest session's word is kept (a late Will of an old session is not). */
export async function saveStatus(q: Query, deviceId: string, s: Status, raw: string, at: string): Promise<void> {
  await q.run(
    `UPDATE devices SET status_json = ?, status_online = ?, status_session = ?, status_at = ?, store_id = COALESCE(?, store_id)
     WHERE device_id = ? AND (status_session IS NULL OR status_session <= ?)`,
    [raw, Number(s.online), s.session, at, s.online ? s.storeId : null, deviceId, s.session],
  );
}
