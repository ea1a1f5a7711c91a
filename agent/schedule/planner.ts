import type { Campaign, CampaignOverride, EpochMs, LocalDate } from '../core/types.js';
import { clipFrom, evenInstants, spanIndexOf, subtractSpans, totalLength, windowSpans, type WindowSpan } from './windows.js';
import { isoWeekday, Zone } from './zoned.js';

// The frequency planner of PROTOCOL §6: a pure function from what is in force, what has
// been played and the time, to the day's remaining spots. Same inputs give the same
// instants, which is what keeps the screens of one intersection in step.

export type { WindowSpan } from './windows.js';

export interface OverrideLayer {
  source: string;
  campaigns: Record<string, CampaignOverride>;
  expiresAt?: EpochMs;
}

export interface PlanInput {
  /** Campaigns in force (already merged). */
  campaigns: Campaign[];
  /** Precedence order: device first, then groups in config order. */
  overrides: OverrideLayer[];
  /** Per campaign: today's plays completed in-window OR in progress right now. */
  counts: Map<string, number>;
  now: EpochMs;
  timezone: string;
  /** A spot is playing until about then: plan no start before it. */
  busyUntil?: EpochMs;
  /** Learned clip length per campaign id (ms); else media.durationMs; else 30000. */
  durations?: Map<string, number>;
  /**
   * The catch-up spreads of the previous plan (CampaignPlan.catchUp), fed back by the engine so that
   * a campaign that fell behind keeps one even spread instead of a new one after every play.
   */
  catchUps?: Map<string, CatchUp & { day: LocalDate }>;
  /** A Zone for `timezone` to reuse across plans (saves ~0.1 ms of Intl setup per plan). */
  zone?: Zone;
  /**
   * Per campaign: the instant its last play today (completed or under way) was planned for
   * (its start, less the player's start latency). The spacing guard keeps the next one at
   * least half a step after it (see wantedInstants).
   */
  lastStarts?: Map<string, EpochMs>;
  /**
   * Instants no campaign may use: a live or pre-staged alert's time (§10), display standby (§11).
   * They are cut out of every campaign's windows, so the day's target is spread over what is left.
   */
  blocked?: readonly WindowSpan[];
}

export interface Slot {
  campaignId: string;
  at: EpochMs;
  durationMs: number;
  priority: number;
  /** Index into the campaign's `CampaignPlan.windows`. */
  windowIndex: number;
}

export interface CampaignPlan {
  campaignId: string;
  day: LocalDate;
  target: number;
  played: number;
  /** Future slots in this plan. */
  planned: number;
  /** played + planned >= target. */
  onTrack: boolean;
  /** Today's windows as instants (after override), merged and sorted. */
  windows: WindowSpan[];
  overridden: boolean;
  /** Set while the campaign is behind its grid: the spread it follows (feed back via PlanInput.catchUps). */
  catchUp?: CatchUp & { day: LocalDate };
  /** Window time between two instants of the spread in force (the grid's, or the catch-up's when set); Infinity without one. */
  spacingMs: number;
}

/** A catch-up spread: `target - done` plays spread evenly over the window time after `from`. */
export interface CatchUp {
  from: EpochMs;
  done: number;
  target: number;
}

export interface Plan {
  day: LocalDate;
  dayStart: EpochMs;
  dayEnd: EpochMs;
  /** Sorted by `at` (ties: higher priority first, then campaign id); all >= max(now, busyUntil). */
  slots: Slot[];
  /** Only campaigns active today (dates inclusive, weekdays). */
  campaigns: CampaignPlan[];
  /** Next instant the plan changes by itself: dayEnd, or the earliest future override expiry. */
  replanAt: EpochMs;
}

export const DEFAULT_DURATION_MS = 30_000;
/** A campaign that missed one grid instant less than this ago is late, not behind. */
export const LATE_GRACE_MS = 10 * 60_000;

export function isActiveOn(c: Campaign, day: LocalDate): boolean {
  if (c.startDate !== undefined && day < c.startDate) return false;
  if (c.endDate !== undefined && day > c.endDate) return false;
  if (c.weekdays !== undefined && !c.weekdays.includes(isoWeekday(day))) return false;
  return true;
}

/** The campaign's timesPerDay and windows after the first live override layer that names it. */
export function effectiveCampaign(
  c: Campaign,
  overrides: readonly OverrideLayer[],
  now: EpochMs,
): { timesPerDay: number; windows: string[] | undefined; overridden: boolean } {
  for (const layer of overrides) {
    if (layer.expiresAt !== undefined && layer.expiresAt <= now) continue;
    const o = layer.campaigns[c.id];
    if (!o) continue;
    return { timesPerDay: o.timesPerDay ?? c.timesPerDay, windows: o.windows ?? c.windows, overridden: true };
  }
  return { timesPerDay: c.timesPerDay, windows: c.windows, overridden: false };
}

interface Candidate {
  at: EpochMs;
  priority: number;
  campaign: number; // index into the campaign plans
}

/**
 * The campaign's wanted start instants before the cross-campaign sweep.
 * On track (done >= grid instants passed): the fixed grid, from index `done` on, so that
 * screens with the same counts pick the same instants. Late (one grid instant missed,
 * less than LATE_GRACE_MS ago): the grid too, the missed one as soon as possible (the sweep
 * moves it to `from`). Behind: the remaining plays
 * re-spread over the remaining window time from `from`.
 * Either way spacing in window time is at least the clip length (as many as fit).
 */
function wantedInstants(
  spans: WindowSpan[],
  target: number,
  done: number,
  d: number | undefined,
  now: EpochMs,
  from: EpochMs,
  anchor: CatchUp | undefined,
  last: EpochMs | undefined,
): { instants: EpochMs[]; catchUp?: CatchUp; spacingMs: number } {
  const total = totalLength(spans);
  // An assumed length (none declared, none learned) never thins the grid: assuming 30 s for a
  // 2 s clip would plan a coarse grid and, once the length is known, a bunched catch-up.
  const fitAll = d === undefined ? target : Math.max(1, Math.floor(total / d));
  const n = Math.min(target, fitAll);
  const step = n > 0 && spans.length > 0 ? total / n : Infinity;
  if (target - done <= 0 || spans.length === 0) return { instants: [], spacingMs: step };
  const grid = evenInstants(spans, n);
  let passed = 0;
  while (passed < grid.length && grid[passed]! < now) passed++;
  // Keep following the catch-up spread made earlier while it is being kept up: re-spreading
  // from "now" after every play would shrink the first gap each time (R/2M, then R'/2M', …)
  // and bunch the day's plays at the start of the catch-up.
  let spread: { instants: EpochMs[]; catchUp: CatchUp; spacingMs: number } | undefined;
  if (anchor && anchor.target === target && anchor.done <= done) {
    const s = catchUpInstants(spans, anchor, d);
    let passedSince = 0;
    while (passedSince < s.instants.length && s.instants[passedSince]! < now) passedSince++;
    if (done - anchor.done >= passedSince) spread = { instants: s.instants.slice(done - anchor.done), catchUp: anchor, spacingMs: s.spacingMs };
  }
  // The spacing guard: a play on the grid (rejoining it, or a late one) never comes less than
  // half a step (the smaller of the grid's and the catch-up's) after the campaign's previous
  // play; where it would, the campaign follows (or makes) an even catch-up spread instead, so
  // it is never played back to back with itself while the window has room.
  const clear = (first: EpochMs | undefined, s: number): boolean => last === undefined || first === undefined || Math.max(first, from) - last >= s / 2 - 1;
  if (done >= passed) {
    const instants = grid.slice(done);
    if (clear(instants[0], Math.min(step, spread?.spacingMs ?? step))) return { instants, spacingMs: step };
    if (spread) return spread;
  } else {
    if (spread) return spread;
    // Late by little (pushed back by another spot, a quick restart): play the missed grid
    // instant as soon as possible and keep the grid, instead of re-spreading the day.
    // Only one instant: several missed at once (a clock step, a long stall) must not become a
    // burst of back-to-back plays, they are re-spread below. (The next grid instant after a late
    // play meets the guard above like any other.)
    if (passed - done === 1 && grid[done]! >= now - LATE_GRACE_MS) {
      if (clear(grid[done], step)) return { instants: grid.slice(done), spacingMs: step };
      // Too soon after the previous play: keep the grid and put the missed play midway in the
      // first grid gap that has half a step on each side of it.
      const inserted = insertMidway(spans, grid.slice(done + 1), last!, from, step);
      if (inserted) return { instants: inserted, spacingMs: step };
    }
  }
  const fresh: CatchUp = { from, done, target };
  return { ...catchUpInstants(spans, fresh, d), catchUp: fresh };
}

/** `next` (grid instants) with one more instant midway between two neighbours (the first being `last`), each half a step away, not before `from`. */
function insertMidway(spans: WindowSpan[], next: EpochMs[], last: EpochMs, from: EpochMs, step: number): EpochMs[] | undefined {
  const first = next[0];
  if (first === undefined || first - last < step / 2 - 1) return undefined;
  for (let j = 0; j < next.length; j++) {
    const a = j === 0 ? last : next[j - 1]!;
    const b = next[j]!;
    const mid = Math.floor((a + b) / 2);
    if (mid >= from && mid - a >= step / 2 - 1 && b - mid >= step / 2 - 1 && spanIndexOf(spans, mid) >= 0) return [...next.slice(0, j), mid, ...next.slice(j)];
  }
  return undefined;
}

/** The remaining plays of a catch-up spread evenly over the window time left after its start. */
function catchUpInstants(spans: WindowSpan[], c: CatchUp, d: number | undefined): { instants: EpochMs[]; spacingMs: number } {
  const rest = clipFrom(spans, c.from);
  const remaining = totalLength(rest);
  if (remaining <= 0) return { instants: [], spacingMs: Infinity };
  const fit = d === undefined ? c.target - c.done : Math.max(1, Math.floor(remaining / d));
  const n = Math.min(c.target - c.done, fit);
  return { instants: evenInstants(rest, n), spacingMs: n > 0 ? remaining / n : Infinity };
}

export function plan(input: PlanInput): Plan {
  const zone = input.zone ?? new Zone(input.timezone);
  const { now, counts } = input;
  const from = Math.max(now, input.busyUntil ?? now);
  const day = zone.localDateOf(now);
  const zd = zone.day(day);
  const dayStart = zd.start;
  const dayEnd = zd.end;

  const plans: CampaignPlan[] = [];
  const durations: number[] = [];
  const priorities: number[] = [];
  const candidates: Candidate[] = [];
  for (const c of input.campaigns) {
    if (!isActiveOn(c, day)) continue;
    const eff = effectiveCampaign(c, input.overrides, now);
    const spans = subtractSpans(windowSpans(eff.windows, zd), input.blocked);
    const played = counts.get(c.id) ?? 0;
    const known = input.durations?.get(c.id) ?? c.media.durationMs;
    const d = Math.max(1, known ?? DEFAULT_DURATION_MS);
    const idx = plans.length;
    plans.push({
      campaignId: c.id,
      day,
      target: eff.timesPerDay,
      played,
      planned: 0,
      onTrack: false,
      windows: spans,
      overridden: eff.overridden,
      spacingMs: Infinity,
    });
    durations.push(d);
    priorities.push(c.priority ?? 0);
    const anchor = input.catchUps?.get(c.id);
    const last = input.lastStarts?.get(c.id);
    const wanted = wantedInstants(spans, eff.timesPerDay, played, known === undefined ? undefined : d, now, from, anchor && anchor.day === day ? anchor : undefined, last);
    plans[idx]!.spacingMs = wanted.spacingMs;
    if (wanted.catchUp) plans[idx]!.catchUp = { ...wanted.catchUp, day };
    for (const at of wanted.instants) {
      candidates.push({ at, priority: c.priority ?? 0, campaign: idx });
    }
  }

  candidates.sort(
    (a, b) =>
      a.at - b.at ||
      b.priority - a.priority ||
      (plans[a.campaign]!.campaignId < plans[b.campaign]!.campaignId ? -1 : plans[a.campaign]!.campaignId > plans[b.campaign]!.campaignId ? 1 : 0),
  );

  // Spots never overlap: each starts when the previous one ends at the earliest, and a spot
  // pushed out of its campaign's windows is dropped (a shortfall, reported by onTrack).
  const slots: Slot[] = [];
  let free = from;
  for (const cand of candidates) {
    const at = Math.max(cand.at, free);
    const cp = plans[cand.campaign]!;
    const windowIndex = spanIndexOf(cp.windows, at);
    if (windowIndex < 0) continue;
    const durationMs = durations[cand.campaign]!;
    slots.push({ campaignId: cp.campaignId, at, durationMs, priority: priorities[cand.campaign]!, windowIndex });
    cp.planned++;
    free = at + durationMs;
  }
  for (const cp of plans) cp.onTrack = cp.played + cp.planned >= cp.target;

  let replanAt = dayEnd;
  for (const layer of input.overrides) {
    if (layer.expiresAt !== undefined && layer.expiresAt > now && layer.expiresAt < replanAt) replanAt = layer.expiresAt;
  }

  return { day, dayStart, dayEnd, slots, campaigns: plans, replanAt };
}
