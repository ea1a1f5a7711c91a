import { parseWindow } from '../protocol/schemas.js';
import type { EpochMs } from '../core/types.js';
import type { ZonedDay } from './zoned.js';

// Windows are authored in local wall time but planned in real elapsed time: a window is
// converted to instants of its day first, so DST days give 23 h / 25 h whole-day windows
// and a window across the spring-forward gap is an hour shorter.

export interface WindowSpan {
  start: EpochMs;
  end: EpochMs;
}

/** Local windows (omitted = whole day) as merged, sorted, non-empty instant spans of `day`. */
export function windowSpans(windows: readonly string[] | undefined, day: ZonedDay): WindowSpan[] {
  const secs: { start: number; end: number }[] = [];
  if (windows === undefined) secs.push({ start: 0, end: 86_400 });
  else {
    for (const w of windows) {
      const p = parseWindow(w);
      if (p) secs.push(p);
    }
  }
  secs.sort((a, b) => a.start - b.start || a.end - b.end);
  const merged: { start: number; end: number }[] = [];
  for (const s of secs) {
    const last = merged[merged.length - 1];
    if (last && s.start <= last.end) last.end = Math.max(last.end, s.end);
    else merged.push({ ...s });
  }
  // toEpoch is non-decreasing in seconds of day, so merged local windows stay disjoint
  // and ordered as instants; a window entirely inside a gap becomes empty and is dropped.
  const spans: WindowSpan[] = [];
  for (const m of merged) {
    const start = day.toEpoch(m.start);
    const end = day.toEpoch(m.end);
    if (end > start) spans.push({ start, end });
  }
  return spans;
}

export function totalLength(spans: readonly WindowSpan[]): number {
  let t = 0;
  for (const s of spans) t += s.end - s.start;
  return t;
}

/** The part of `spans` at or after `from`. */
export function clipFrom(spans: readonly WindowSpan[], from: EpochMs): WindowSpan[] {
  const out: WindowSpan[] = [];
  for (const s of spans) {
    if (s.end <= from) continue;
    out.push(s.start >= from ? s : { start: from, end: s.end });
  }
  return out;
}

/**
 * Instants at window-time offsets (i + 0.5)·T/n, i = 0..n-1, walking the spans in order.
 * Offsets are < T, so every instant lies inside a span; flooring keeps it there.
 */
export function evenInstants(spans: readonly WindowSpan[], n: number): EpochMs[] {
  const out: EpochMs[] = [];
  if (n <= 0 || spans.length === 0) return out;
  const total = totalLength(spans);
  const step = total / n;
  let k = 0;
  let before = 0; // window time in spans[0..k)
  for (let i = 0; i < n; i++) {
    const off = (i + 0.5) * step;
    let span = spans[k]!;
    while (off >= before + (span.end - span.start) && k < spans.length - 1) {
      before += span.end - span.start;
      span = spans[++k]!;
    }
    out.push(Math.min(span.end - 1, Math.floor(span.start + (off - before))));
  }
  return out;
}

/** Index of the span containing `at`, or -1. */
export function spanIndexOf(spans: readonly WindowSpan[], at: EpochMs): number {
  for (let i = 0; i < spans.length; i++) {
    const s = spans[i]!;
    if (at >= s.start && at < s.end) return i;
  }
  return -1;
}

/**
 * `spans` less every `blocked` interval (alert time, display standby): what is left is the window
 * time a campaign can use. Both inputs sorted or not; the result is sorted and disjoint.
 */
export function subtractSpans(spans: readonly WindowSpan[], blocked: readonly WindowSpan[] | undefined): WindowSpan[] {
  if (!blocked || blocked.length === 0) return [...spans];
  const cuts = [...blocked].filter((b) => b.end > b.start).sort((a, b) => a.start - b.start);
  const out: WindowSpan[] = [];
  for (const s of spans) {
    let start = s.start;
    for (const c of cuts) {
      if (c.end <= start) continue;
      if (c.start >= s.end) break;
      if (c.start > start) out.push({ start, end: c.start });
      start = Math.max(start, c.end);
      if (start >= s.end) break;
    }
    if (start < s.end) out.push({ start, end: s.end });
  }
  return out;
}
