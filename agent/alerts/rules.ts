import type { DesiredState } from '../core/desired.js';
import type { Alert, EpochMs } from '../core/types.js';
import type { WindowSpan } from '../schedule/windows.js';

// PROTOCOL §10 as pure rules: which alerts are in force, which one is live at `now`, when that
// changes next, and the time campaigns must plan around. No clock, no I/O: the controller
// (controller.ts) feeds `now` in.

/** An alert in force, with its instants parsed once. */
export interface AlertInForce {
  /** The play events' campaignId: `alert:{id}`. */
  campaignId: string;
  source: string;
  version: number;
  doc: Alert;
  startsAt: EpochMs;
  expiresAt: EpochMs;
  /** undefined: the media (or text) loops for the whole alert. */
  repeatMs?: number;
}

/** Device first, then groups in config order, then the fleet: the tie-break of equal startsAt. */
function rank(source: string, groups: readonly string[]): number {
  if (source === 'device') return 0;
  if (source === 'fleet') return groups.length + 1;
  const i = groups.indexOf(source.slice('group/'.length));
  return i < 0 ? Infinity : i + 1;
}

/**
 * Every stored alert that is not cleared and comes from a topic this screen listens to (a group
 * no longer in the config is not in force), less those already expired at `now`.
 */
export function alertsInForce(state: DesiredState, groups: readonly string[], now: EpochMs): AlertInForce[] {
  const out: AlertInForce[] = [];
  for (const d of state.alerts ?? []) {
    const doc = d.doc;
    if (doc === null || doc.clear === true || !Number.isFinite(rank(d.source, groups))) continue;
    const a = doc as Alert;
    const expiresAt = Date.parse(a.expiresAt);
    if (!(expiresAt > now)) continue;
    out.push({
      campaignId: `alert:${a.id}`,
      source: d.source,
      version: d.version,
      doc: a,
      startsAt: Date.parse(a.startsAt),
      expiresAt,
      ...(a.repeatEverySec !== undefined ? { repeatMs: a.repeatEverySec * 1000 } : {}),
    });
  }
  // Newest startsAt first; equal starts: device over group over fleet.
  return out.sort((x, y) => y.startsAt - x.startsAt || rank(x.source, groups) - rank(y.source, groups));
}

/** The alert on screen at `now`: the newest startsAt among the live ones; the others wait their turn until they expire. */
export function liveAlert(alerts: readonly AlertInForce[], now: EpochMs): AlertInForce | undefined {
  return alerts.find((a) => a.startsAt <= now && now < a.expiresAt);
}

/** The next instant after `now` at which an alert starts or ends (then the live one may change). */
export function nextChangeAt(alerts: readonly AlertInForce[], now: EpochMs): EpochMs | undefined {
  let next = Infinity;
  for (const a of alerts) {
    if (a.startsAt > now) next = Math.min(next, a.startsAt);
    if (a.expiresAt > now) next = Math.min(next, a.expiresAt);
  }
  return Number.isFinite(next) ? next : undefined;
}

/**
 * When the live alert's next showing is due: at once for a looping alert (one showing follows
 * another), else `repeatMs` after the last showing started (at once if it was never shown).
 */
export function showingDueAt(a: AlertInForce, lastShownAt: EpochMs | undefined): EpochMs {
  if (a.repeatMs === undefined || lastShownAt === undefined) return a.startsAt;
  return lastShownAt + a.repeatMs;
}

/**
 * The time no campaign may use (the planner's PlanInput.blocked), from `now` on: a looping
 * alert's whole span, and a repeating one's showings (`showMs` long each, on its grid from the
 * last showing). Spans may overlap; the planner cuts each out.
 */
export function blockedSpans(alerts: readonly AlertInForce[], now: EpochMs, showMs: (a: AlertInForce) => number, lastShownAt: (a: AlertInForce) => EpochMs | undefined): WindowSpan[] {
  const spans: WindowSpan[] = [];
  for (const a of alerts) {
    if (a.repeatMs === undefined) {
      spans.push({ start: Math.max(a.startsAt, Math.min(now, a.expiresAt)), end: a.expiresAt });
      continue;
    }
    const len = Math.max(1000, showMs(a));
    // Bounded: a repeat of 10 s over 24 h is 8,640 showings; the planner handles that many spans.
    for (let t = showingDueAt(a, lastShownAt(a)); t < a.expiresAt; t += a.repeatMs) {
      if (t + len <= now) continue;
      spans.push({ start: Math.max(t, now), end: Math.min(t + len, a.expiresAt) });
    }
  }
  return spans;
}
