import type { Campaign, CampaignOverride, EpochMs, LocalDate } from '../core/types.js';
import { clipFrom, evenInstants, spanIndexOf, totalLength, windowSpans, type WindowSpan } from './windows.js';
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
  d: number,
  now: EpochMs,
  from: EpochMs,
  anchor: CatchUp | undefined,
): { instants: EpochMs[]; catchUp?: CatchUp } {
  const want = target - done;
  if (want <= 0 || spans.length === 0) return { instants: [] };
  const total = totalLength(spans);
  const fitAll = Math.max(1, Math.floor(total / d));
  const grid = evenInstants(spans, Math.min(target, fitAll));
  let passed = 0;
  while (passed < grid.length && grid[passed]! < now) passed++;
  if (done >= passed) return { instants: grid.slice(done) };
  // Behind. Keep following the catch-up spread made earlier while it is being kept up:
  // re-spreading from "now" after every play would shrink the first gap each time
  // (R/2M, then R'/2M', …) and bunch the day's plays at the start of the catch-up.
  if (anchor && anchor.target === target && anchor.done <= done) {
    const spread = catchUpInstants(spans, anchor, d);
    let passedSince = 0;
    while (passedSince < spread.length && spread[passedSince]! < now) passedSince++;
    if (done - anchor.done >= passedSince) return { instants: spread.slice(done - anchor.done), catchUp: anchor };
  }
  // Late by little (pushed back by another spot, a quick restart): play the missed grid
  // instant as soon as possible and keep the grid, instead of re-spreading the day.
  // Only one instant: several missed at once (a clock step, a long stall) must not become a
  // burst of back-to-back plays, they are re-spread below.
  if (passed - done === 1 && grid[done]! >= now - LATE_GRACE_MS) return { instants: grid.slice(done) };
  const fresh: CatchUp = { from, done, target };
  return { instants: catchUpInstants(spans, fresh, d), catchUp: fresh };
}

/** The remaining plays of a catch-up spread evenly over the window time left after its start. */
function catchUpInstants(spans: WindowSpan[], c: CatchUp, d: number): EpochMs[] {
  const rest = clipFrom(spans, c.from);
  const remaining = totalLength(rest);
  if (remaining <= 0) return [];
  const fit = Math.max(1, Math.floor(remaining / d));
  return evenInstants(rest, Math.min(c.target - c.done, fit));
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
    const spans = windowSpans(eff.windows, zd);
    const played = counts.get(c.id) ?? 0;
    const d = Math.max(1, input.durations?.get(c.id) ?? c.media.durationMs ?? DEFAULT_DURATION_MS);
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
    });
    durations.push(d);
    priorities.push(c.priority ?? 0);
    const anchor = input.catchUps?.get(c.id);
    const wanted = wantedInstants(spans, eff.timesPerDay, played, d, now, from, anchor && anchor.day === day ? anchor : undefined);
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
