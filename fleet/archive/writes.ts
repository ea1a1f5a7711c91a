import { createHash } from 'node:crypto';
import type { AgentEvent, Compliance, Heartbeat, PlayEvent, Status } from '../../agent/protocol/index.js';
import type { Param, Query } from './db.js';
import { manyLater, manyRows, manyStatements, runStatements, type Statements } from './rows.js';

// The statements of one ingest batch, each run inside the batch's transaction (archive.ts), each
// set-based: a batch costs a handful of statements whatever its size or the number of screens in
// it (rows.ts says why). Callers hand each function rows already reduced to one per key where a
// key may appear once (pg refuses an upsert that touches a row twice in one statement).

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

const key = (...parts: string[]): string => parts.join('\u0000');

/**
 * Makes sure every device of a batch has its row, then, on PostgreSQL, locks those rows in device-id
 * order for the rest of the transaction. Why: several ingest processes on one pg database receive
 * the same screens' messages (the shared subscription deals them round robin), and a batch's
 * seq-gap bookkeeping (trackSeqs) is read-modify-write over (device, store): under READ COMMITTED
 * two batches would both read the same max_seq and one's gaps would be lost. The device row is the
 * screen's mutex: a second batch touching the screen waits for the first's COMMIT, then reads what
 * it wrote. (The batch's later upserts of devices and compliance rows would lock too, but in message
 * order: two batches naming screens in opposite orders then deadlock, pg aborts one after its 1 s
 * deadlock_timeout and PgDb.tx runs it again.) Taking all of a batch's locks up front and in one
 * order means no cycle, while batches about different screens run side by side. SERIALIZABLE would
 * abort and retry the loser of every overlap instead, which with round robin is nearly every batch.
 * SQLite needs none of it: BEGIN IMMEDIATE holds the whole file.
 */
export async function lockDevices(q: Query, ids: readonly string[], at: string): Promise<void> {
  const sorted = [...ids].sort();
  if (q.dialect === 'sqlite') {
    await manyLater(q, sorted.map((id) => [id, at]), 2, (v) => `INSERT INTO devices (device_id, first_seen_at) VALUES ${v} ON CONFLICT DO NOTHING`);
    return;
  }
  const list = JSON.stringify(sorted);
  await q.run('INSERT INTO devices (device_id, first_seen_at) SELECT d, ?::text FROM json_array_elements_text(?::json) AS d ORDER BY d ON CONFLICT DO NOTHING', [at, list]);
  await q.all('SELECT device_id FROM devices WHERE device_id IN (SELECT json_array_elements_text(?::json)) ORDER BY device_id FOR UPDATE', [list]);
}

/** One (device, day, campaign) word; a play event says nothing of onTrack (null). */
export interface ComplianceRow extends Omit<Compliance, 'onTrack'> {
  deviceId: string;
  onTrack: boolean | null;
  asOf: string;
}

/** The latest word on each (device, day, campaign) wins. At most one row a key (pg's rule for upserts). */
export async function upsertCompliance(q: Query, rows: readonly ComplianceRow[]): Promise<void> {
  await manyLater(q, rows.map((c) => [c.deviceId, c.day, c.campaignId, c.played, c.target, c.onTrack === null ? null : Number(c.onTrack), c.asOf]), 7,
    (v) => `INSERT INTO compliance (device_id, day, campaign_id, played, target, on_track, as_of) VALUES ${v}
     ON CONFLICT (device_id, day, campaign_id) DO UPDATE SET played = excluded.played, target = excluded.target,
       on_track = COALESCE(excluded.on_track, compliance.on_track), as_of = excluded.as_of
     WHERE excluded.as_of >= compliance.as_of`);
}

const PLAY_COLUMNS = 'event_id, device_id, store_id, seq, campaign_id, day, started_at, ended_at, duration_ms, outcome, in_window, played, target, payload, received_at, ingest_id';

/** A play's values for PLAY_COLUMNS' first 13, the ones both engines take from the validated play. */
const playValues = (p: PlayEvent): Param[] => [p.eventId, p.deviceId, p.storeId, p.seq, p.campaignId, p.day, p.startedAt, p.endedAt, p.durationMs, p.outcome, Number(p.inWindow), p.played, p.target];

/** Those 13 read back out of SQLite's JSON array (`j`), in order. */
const PLAY_VALUES_FROM_JSON = Array.from({ length: 13 }, (_, i) => `j->>${i}`).join(', ');

/**
 * `values` as a JSON array for SQLite's `->>`. A lone surrogate (a payload may carry `"\ud800"`)
 * becomes U+FFFD first, as binding the string did; SQLite would decode it to three invalid bytes.
 * Only JSON.stringify's escape of one can put `\ud` in the text (or a backslash and "ud" of the
 * text itself, which only costs the rewrite).
 */
function columnsJson(values: Param[]): string {
  const json = JSON.stringify(values);
  if (!json.includes('\\ud')) return json;
  return JSON.stringify(values.map((v) => (typeof v === 'string' ? v.replace(/\p{Cs}/gu, '\ufffd') : v)));
}

/**
 * Once by eventId (ON CONFLICT DO NOTHING): the eventIds new to the archive (those go on to afterPlays).
 *
 * SQLite gets two parameters a play, its bytes as received (kept in `payload`) and its 13 columns as
 * one JSON array that SQLite takes apart (`->>`), plus the batch's received_at and ingest id once.
 * Why: node-sqlite3 binds each value through N-API on the event loop, and binding 16 values a play
 * was the ingest's biggest single cost (~10 µs of a ~40 µs play in a profile; issue 11's bench). The
 * array is built from the validated play, never parsed out of the received bytes: JSON.parse keeps
 * a repeated key's last value and SQLite's `->>` its first, so a payload could pass validation with
 * one deviceId and be filed under another. pg binds as before: its driver sends text, no such cost.
 */
export async function insertPlays(q: Query, plays: ReadonlyArray<{ play: PlayEvent; raw: string }>, at: string, ingestId: string, built?: Statements): Promise<Set<string>> {
  if (q.dialect === 'postgres') {
    const rows = plays.map(({ play, raw }) => [...playValues(play), raw, at, ingestId]);
    const added = await manyRows<{ event_id: string }>(q, rows, 16, (v) => `INSERT INTO plays (${PLAY_COLUMNS}) VALUES ${v} ON CONFLICT DO NOTHING RETURNING event_id`);
    return new Set(added.map((r) => r.event_id));
  }
  const results = await runStatements(q, built ?? sqlitePlayStatements(plays, at, ingestId));
  // No RETURNING: turning 1,000 rows into JS objects took ~1.5 ms of the event loop a batch, to
  // learn what is nearly always "all of them". As many rows inserted as distinct eventIds: all new.
  const distinct = new Set(plays.map(({ play }) => play.eventId));
  const inserted = results.reduce((n, r) => n + r.changes, 0);
  if (inserted === distinct.size) return distinct;
  // Some were archived already (a redelivery). A statement's new rows have consecutive rowids ending
  // at its last insert (SQLite gives each new row the table's largest rowid + 1), so read them back.
  const added = new Set<string>();
  for (const r of results) {
    if (r.changes === 0 || r.lastId === undefined) continue;
    const got = await q.all<{ event_id: string }>('SELECT event_id FROM plays WHERE rowid > ? AND rowid <= ?', [r.lastId - r.changes, r.lastId]);
    for (const { event_id } of got) added.add(event_id);
  }
  if (added.size !== inserted) throw new Error(`plays: ${inserted} inserted but ${added.size} read back`);
  return added;
}

/**
 * SQLite's INSERT of `plays` (insertPlays), built without running it, so that the ingest can build
 * and bind the next batch's while this one commits (Database.prebind).
 */
export function sqlitePlayStatements(plays: ReadonlyArray<{ play: PlayEvent; raw: string }>, at: string, ingestId: string): Statements {
  const rows = plays.map(({ play, raw }) => [raw, columnsJson(playValues(play))]);
  // `WHERE true`: SQLite's parser needs it to tell an upsert's ON CONFLICT from a join's ON.
  return manyStatements('sqlite', rows, 2, (v) => `WITH v(raw, j) AS (VALUES ${v}) INSERT INTO plays (${PLAY_COLUMNS})
     SELECT ${PLAY_VALUES_FROM_JSON}, raw, ?, ? FROM v WHERE true ON CONFLICT DO NOTHING`, [at, ingestId]);
}

/** After a batch's new plays: the newest play per (device, day, campaign) speaks for its plan, the newest per device dates it. */
export async function afterPlays(q: Query, newest: Iterable<PlayEvent>, at: string): Promise<void> {
  const rows: ComplianceRow[] = [];
  const last = new Map<string, string>();
  for (const p of newest) {
    rows.push({ deviceId: p.deviceId, campaignId: p.campaignId, day: p.day, played: p.played, target: p.target, onTrack: null, asOf: p.endedAt });
    if ((last.get(p.deviceId) ?? '') < p.endedAt) last.set(p.deviceId, p.endedAt);
  }
  await upsertCompliance(q, rows);
  await manyLater(q, [...last].map(([id, end]) => [id, at, end]), 3,
    (v) => `INSERT INTO devices (device_id, first_seen_at, last_play_at) VALUES ${v}
     ON CONFLICT (device_id) DO UPDATE SET last_play_at = excluded.last_play_at
     WHERE devices.last_play_at IS NULL OR devices.last_play_at < excluded.last_play_at`);
}

/** Each event once (by a digest of its bytes, per device); resolves to how many were new. */
export async function insertEvents(q: Query, events: ReadonlyArray<{ deviceId: string; event: AgentEvent; raw: string }>, at: string): Promise<number> {
  const rows = events.map(({ deviceId, event: e, raw }) => [deviceId, createHash('sha256').update(raw).digest('hex'), e.ts, e.type, JSON.stringify(e.detail ?? null), at]);
  const added = await manyRows<{ device_id: string }>(q, rows, 6,
    (v) => `INSERT INTO events (device_id, digest, ts, type, detail, received_at) VALUES ${v} ON CONFLICT DO NOTHING RETURNING device_id`);
  return added.length;
}

/** The newest heartbeat of each device (one a device), and the compliance each reports. */
export async function saveHeartbeats(q: Query, beats: ReadonlyArray<{ heartbeat: Heartbeat; raw: string }>, at: string): Promise<void> {
  await manyLater(q, beats.map(({ heartbeat: hb, raw }) => [hb.deviceId, at, raw, hb.ts, hb.storeId ?? null]), 5,
    (v) => `INSERT INTO devices (device_id, first_seen_at, heartbeat_json, heartbeat_at, store_id) VALUES ${v}
     ON CONFLICT (device_id) DO UPDATE SET heartbeat_json = excluded.heartbeat_json, heartbeat_at = excluded.heartbeat_at,
       store_id = COALESCE(excluded.store_id, devices.store_id)
     WHERE devices.heartbeat_at IS NULL OR devices.heartbeat_at <= excluded.heartbeat_at`);
  const words = new Map<string, ComplianceRow>();
  for (const { heartbeat: hb } of beats) {
    for (const c of hb.compliance ?? []) words.set(key(hb.deviceId, c.day, c.campaignId), { ...c, deviceId: hb.deviceId, asOf: hb.ts });
  }
  await upsertCompliance(q, [...words.values()]);
}

/**
 * The retained status, one a device: the highest session's word is kept (a late Will of an old
 * session is not). `storeId`: the store an online status of that session named, if any.
 */
export async function saveStatuses(q: Query, statuses: ReadonlyArray<{ deviceId: string; status: Status; raw: string; storeId: string | null }>, at: string): Promise<void> {
  await manyLater(q, statuses.map(({ deviceId, status: s, raw, storeId }) => [deviceId, at, raw, Number(s.online), s.session, at, storeId]), 7,
    (v) => `INSERT INTO devices (device_id, first_seen_at, status_json, status_online, status_session, status_at, store_id) VALUES ${v}
     ON CONFLICT (device_id) DO UPDATE SET status_json = excluded.status_json, status_online = excluded.status_online,
       status_session = excluded.status_session, status_at = excluded.status_at, store_id = COALESCE(excluded.store_id, devices.store_id)
     WHERE devices.status_session IS NULL OR devices.status_session <= excluded.status_session`);
}
