import type { EpochMs, LocalDate } from '../core/types.js';
import { secondsOfHhmm, type DisplaySchedule } from '../protocol/display-schema.js';
import { subtractSpans, type WindowSpan } from '../schedule/windows.js';
import { addDays, isoWeekday, type Zone } from '../schedule/zoned.js';

// PROTOCOL §11 as pure functions of (schedule, zone, time), like the planner: no clock, no I/O.
// Power windows and brightness levels are local wall-clock times turned into instants of their
// day, so a DST day moves them with the wall clock (a time inside the spring-forward gap starts
// at the first instant after it). A window whose `off` is not after its `on` closes the next
// day: it belongs to the day it opens on, weekdays included (on 06:00 off 01:00 on Fridays only
// also keeps the screen on until 01:00 on Saturday).

/** How far ahead `powerAt` looks for the next change: a week and a day covers any weekdays list. */
const LOOKAHEAD_DAYS = 8;

/** The instants of `day` when the screen is on (sorted, disjoint). No `power` key: the whole day. */
export function onSpans(s: DisplaySchedule | undefined, zone: Zone, day: LocalDate): WindowSpan[] {
  const { start: dayStart, end: dayEnd } = zone.dayBounds(day);
  if (!s?.power) return [{ start: dayStart, end: dayEnd }];
  const raw: WindowSpan[] = [];
  // Yesterday's overnight windows reach into today.
  for (const d of [addDays(day, -1), day]) {
    if (s.weekdays && !s.weekdays.includes(isoWeekday(d))) continue;
    for (const w of s.power) {
      const on = secondsOfHhmm(w.on);
      const off = secondsOfHhmm(w.off);
      const start = zone.localToEpoch(d, on);
      const end = off > on ? zone.localToEpoch(d, off) : zone.localToEpoch(addDays(d, 1), off);
      const a = Math.max(start, dayStart);
      const b = Math.min(end, dayEnd);
      if (b > a) raw.push({ start: a, end: b });
    }
  }
  return merge(raw);
}

/** The instants of `day` when the screen is in standby by schedule: what the planner cuts out of every window. */
export function offSpans(s: DisplaySchedule | undefined, zone: Zone, day: LocalDate): WindowSpan[] {
  if (!s?.power) return [];
  const b = zone.dayBounds(day);
  return subtractSpans([b], onSpans(s, zone, day));
}

export interface PowerNow {
  on: boolean;
  /** When it changes next; undefined when the schedule never changes it (no `power` key). */
  until: EpochMs | undefined;
}

/** Whether the screen is on at `now` by schedule, and until when. */
export function powerAt(s: DisplaySchedule | undefined, zone: Zone, now: EpochMs): PowerNow {
  if (!s?.power) return { on: true, until: undefined };
  const today = zone.localDateOf(now);
  const spans: WindowSpan[] = [];
  for (let i = 0; i <= LOOKAHEAD_DAYS; i++) spans.push(...onSpans(s, zone, addDays(today, i)));
  // Spans of consecutive days meet at midnight: merged, an overnight window is one span.
  for (const sp of merge(spans)) {
    if (now < sp.start) return { on: false, until: sp.start };
    if (now < sp.end) return { on: true, until: sp.end };
  }
  return { on: false, until: undefined };
}

export interface BrightnessPeriod extends WindowSpan {
  pct: number;
}

/**
 * The brightness levels of `day` as periods covering it. A level holds from its `from` until the
 * next level's; before the day's first `from` the output is at 100 % (the §11 example, levels at
 * 18:30 and 22:00, means full brightness in the daytime), so a night level that should hold past
 * midnight is written again at 00:00.
 */
export function brightnessPeriods(s: DisplaySchedule | undefined, zone: Zone, day: LocalDate): BrightnessPeriod[] {
  const { start: dayStart, end: dayEnd } = zone.dayBounds(day);
  const levels = [...(s?.brightness ?? [])]
    .map((l) => ({ at: zone.localToEpoch(day, secondsOfHhmm(l.from)), pct: l.pct }))
    .sort((a, b) => a.at - b.at);
  const out: BrightnessPeriod[] = [];
  let at = dayStart;
  let pct = 100;
  for (const l of levels) {
    if (l.at > at) out.push({ start: at, end: l.at, pct });
    at = Math.max(at, l.at);
    pct = l.pct;
  }
  out.push({ start: at, end: dayEnd, pct });
  return out;
}

/** The brightness level at `now` and when it changes next (undefined: never, no levels). */
export function brightnessAt(s: DisplaySchedule | undefined, zone: Zone, now: EpochMs): { pct: number; until: EpochMs | undefined } {
  if (!s?.brightness) return { pct: 100, until: undefined };
  const periods = brightnessPeriods(s, zone, zone.localDateOf(now));
  const p = periods.find((x) => now >= x.start && now < x.end) ?? periods[periods.length - 1]!;
  return { pct: p.pct, until: p.end };
}

function merge(spans: WindowSpan[]): WindowSpan[] {
  const sorted = [...spans].sort((a, b) => a.start - b.start);
  const out: WindowSpan[] = [];
  for (const s of sorted) {
    const last = out[out.length - 1];
    if (last && s.start <= last.end) last.end = Math.max(last.end, s.end);
    else out.push({ ...s });
  }
  return out;
}
