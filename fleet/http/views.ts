import type { Param, Query } from '../archive/db.js';

// What the NOC page shows, read from the archive. Portable SQL (`?` placeholders, no SQLite-only
// functions): the same statements run on the PostgreSQL archive. Heartbeats and statuses are kept
// raw; they are read here defensively (every field may be missing or of another type), and every
// string in them is the device's word: the page renders them as text, never as markup.

export type ScreenState = 'online' | 'stale' | 'offline' | 'standby';
export const STATES: readonly ScreenState[] = ['online', 'stale', 'standby', 'offline'];

export interface Tile {
  deviceId: string;
  groups: string[];
  state: ScreenState;
  /** Why: `will` (the broker published the Will or the agent said goodbye), `no-status`, `heartbeat-age`, `schedule`. */
  reason: string;
  storeId: string | null;
  statusAt: string | null;
  heartbeatAt: string | null;
  heartbeatAgeSec: number | null;
  cpuTempC: number | null;
  throttled: { now: boolean; occurred: boolean; underVoltage: boolean; raw: string } | null;
  backlog: number | null;
  power: string | null;
  player: string | null;
  /** The screen's newest reported day: played (capped at target per campaign) and target, summed. */
  compliance: { day: string; played: number; target: number } | null;
  storeReplaced: { count: number; lastAt: string } | null;
  seqMissing: number;
  lastPlayAt: string | null;
}

interface DeviceRow {
  device_id: string;
  store_id: string | null;
  status_online: number | null;
  status_at: string | null;
  heartbeat_json: string | null;
  heartbeat_at: string | null;
  last_play_at: string | null;
}

type Json = Record<string, unknown>;

export function parseObject(text: string | null): Json | null {
  if (!text) return null;
  try {
    const v: unknown = JSON.parse(text);
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : null;
  } catch {
    return null;
  }
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const obj = (v: unknown): Json | null => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : null);

/** PROTOCOL §11: `display.power` (on|standby|unknown); older agents send `display` as the HDMI state string. */
export function powerOf(hb: Json | null): string | null {
  return str(obj(hb?.display)?.power);
}

export function stateOf(row: { status_online: number | null; heartbeat_at: string | null }, hb: Json | null, now: number, staleAfterSec: number): { state: ScreenState; reason: string } {
  if (row.status_online === 0) return { state: 'offline', reason: 'will' };
  if (row.status_online === null && !row.heartbeat_at) return { state: 'offline', reason: 'no-status' };
  const age = row.heartbeat_at ? (now - Date.parse(row.heartbeat_at)) / 1000 : Infinity;
  if (!(age <= staleAfterSec)) return { state: 'stale', reason: 'heartbeat-age' };
  if (powerOf(hb) === 'standby') return { state: 'standby', reason: 'schedule' };
  return { state: 'online', reason: 'heartbeat' };
}

const placeholders = (n: number): string => Array.from({ length: n }, () => '?').join(', ');

/** The tiles of every screen, or of `ids` only (an SSE update). */
export async function tiles(q: Query, now: number, staleAfterSec: number, ids?: readonly string[]): Promise<Tile[]> {
  if (ids && ids.length === 0) return [];
  // A big batch touches most of the fleet: one full read beats a long IN list (and its parameter limits).
  if (ids && ids.length > 500) {
    const want = new Set(ids);
    return (await tiles(q, now, staleAfterSec)).filter((t) => want.has(t.deviceId));
  }
  const where = ids ? ` WHERE device_id IN (${placeholders(ids.length)})` : '';
  const p: Param[] = ids ? [...ids] : [];
  const devices = await q.all<DeviceRow>(
    `SELECT device_id, store_id, status_online, status_at, heartbeat_json, heartbeat_at, last_play_at FROM devices${where} ORDER BY device_id`, p);
  const groups = await q.all<{ device_id: string; group_name: string }>(`SELECT device_id, group_name FROM device_groups${where} ORDER BY group_name`, p);
  const comp = await q.all<{ device_id: string; day: string; played: number; target: number }>(
    `SELECT c.device_id, c.day, SUM(CASE WHEN c.played > c.target THEN c.target ELSE c.played END) AS played, SUM(c.target) AS target
       FROM compliance c JOIN (SELECT device_id, MAX(day) AS day FROM compliance${where} GROUP BY device_id) m
         ON m.device_id = c.device_id AND m.day = c.day
      GROUP BY c.device_id, c.day`, p);
  const replaced = await q.all<{ device_id: string; n: number; last_at: string }>(
    `SELECT device_id, COUNT(*) AS n, MAX(seen_at) AS last_at FROM store_changes${where} GROUP BY device_id`, p);
  const gaps = await q.all<{ device_id: string; missing: number }>(`SELECT device_id, SUM(hi - lo + 1) AS missing FROM seq_gaps${where} GROUP BY device_id`, p);

  const groupsOf = new Map<string, string[]>();
  for (const g of groups) groupsOf.set(g.device_id, [...(groupsOf.get(g.device_id) ?? []), g.group_name]);
  const compOf = new Map(comp.map((c) => [c.device_id, { day: c.day, played: Number(c.played), target: Number(c.target) }]));
  const replacedOf = new Map(replaced.map((r) => [r.device_id, { count: Number(r.n), lastAt: r.last_at }]));
  const missingOf = new Map(gaps.map((g) => [g.device_id, Number(g.missing)]));

  return devices.map((d) => {
    const hb = parseObject(d.heartbeat_json);
    const th = obj(hb?.throttled);
    const { state, reason } = stateOf(d, hb, now, staleAfterSec);
    return {
      deviceId: d.device_id,
      groups: groupsOf.get(d.device_id) ?? [],
      state,
      reason,
      storeId: d.store_id,
      statusAt: d.status_at,
      heartbeatAt: d.heartbeat_at,
      heartbeatAgeSec: d.heartbeat_at ? Math.max(0, Math.round((now - Date.parse(d.heartbeat_at)) / 1000)) : null,
      cpuTempC: num(hb?.cpuTempC),
      throttled: th
        ? {
          now: th.throttledNow === true || th.freqCappedNow === true || th.underVoltageNow === true || th.softTempLimitNow === true,
          occurred: th.throttledOccurred === true || th.underVoltageOccurred === true,
          underVoltage: th.underVoltageNow === true,
          raw: str(th.raw) ?? '',
        }
        : null,
      backlog: num(hb?.backlog),
      power: powerOf(hb),
      player: str(obj(hb?.player)?.state),
      compliance: compOf.get(d.device_id) ?? null,
      storeReplaced: replacedOf.get(d.device_id) ?? null,
      seqMissing: missingOf.get(d.device_id) ?? 0,
      lastPlayAt: d.last_play_at,
    };
  });
}

export function countStates(ts: readonly Tile[]): Record<ScreenState | 'total', number> {
  const c = { total: ts.length, online: 0, stale: 0, standby: 0, offline: 0 };
  for (const t of ts) c[t.state]++;
  return c;
}

export interface PlayRow {
  seq: number;
  campaignId: string;
  startedAt: string;
  endedAt: string;
  durationMs: number;
  outcome: string;
  inWindow: boolean;
}

export interface ScreenDetail {
  tile: Tile;
  heartbeat: Json | null;
  status: Json | null;
  day: string | null;
  plays: PlayRow[];
  /** Per campaign of `day`: the screen's own count and target. */
  compliance: Array<{ campaignId: string; played: number; target: number; onTrack: boolean | null }>;
  gaps: Array<{ storeId: string; lo: number; hi: number; detectedAt: string }>;
  storeChanges: Array<{ previousStoreId: string; storeId: string; source: string; seenAt: string }>;
}

/** One screen's page; `day` defaults to its newest reported day. Undefined for an unknown screen. */
export async function screen(q: Query, id: string, now: number, staleAfterSec: number, day?: string): Promise<ScreenDetail | undefined> {
  const [tile] = await tiles(q, now, staleAfterSec, [id]);
  if (!tile) return undefined;
  const row = await q.get<{ heartbeat_json: string | null; status_json: string | null }>('SELECT heartbeat_json, status_json FROM devices WHERE device_id = ?', [id]);
  const d = day ?? tile.compliance?.day ?? (await q.get<{ day: string | null }>('SELECT MAX(day) AS day FROM plays WHERE device_id = ?', [id]))?.day ?? null;
  const plays = d === null ? [] : await q.all<{ seq: number; campaign_id: string; started_at: string; ended_at: string; duration_ms: number; outcome: string; in_window: number }>(
    'SELECT seq, campaign_id, started_at, ended_at, duration_ms, outcome, in_window FROM plays WHERE device_id = ? AND day = ? ORDER BY started_at, seq', [id, d]);
  const comp = d === null ? [] : await q.all<{ campaign_id: string; played: number; target: number; on_track: number | null }>(
    'SELECT campaign_id, played, target, on_track FROM compliance WHERE device_id = ? AND day = ? ORDER BY campaign_id', [id, d]);
  const gaps = await q.all<{ store_id: string; lo: number; hi: number; detected_at: string }>('SELECT store_id, lo, hi, detected_at FROM seq_gaps WHERE device_id = ? ORDER BY detected_at, lo', [id]);
  const changes = await q.all<{ previous_store_id: string; store_id: string; source: string; seen_at: string }>(
    'SELECT previous_store_id, store_id, source, seen_at FROM store_changes WHERE device_id = ? ORDER BY seen_at', [id]);
  return {
    tile,
    heartbeat: parseObject(row?.heartbeat_json ?? null),
    status: parseObject(row?.status_json ?? null),
    day: d,
    plays: plays.map((p) => ({ seq: Number(p.seq), campaignId: p.campaign_id, startedAt: p.started_at, endedAt: p.ended_at, durationMs: Number(p.duration_ms), outcome: p.outcome, inWindow: Boolean(Number(p.in_window)) })),
    compliance: comp.map((c) => ({ campaignId: c.campaign_id, played: Number(c.played), target: Number(c.target), onTrack: c.on_track === null ? null : Boolean(Number(c.on_track)) })),
    gaps: gaps.map((g) => ({ storeId: g.store_id, lo: Number(g.lo), hi: Number(g.hi), detectedAt: g.detected_at })),
    storeChanges: changes.map((c) => ({ previousStoreId: c.previous_store_id, storeId: c.store_id, source: c.source, seenAt: c.seen_at })),
  };
}
