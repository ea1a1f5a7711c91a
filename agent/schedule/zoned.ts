import type { EpochMs, LocalDate } from '../core/types.js';

// IANA timezone arithmetic on Intl alone. The only primitive Intl gives us is
// "instant -> wall clock fields"; everything else (wall clock -> instant, day bounds)
// is derived from the UTC offset at an instant, and per-day results are memoised in
// the Zone instance because Intl.DateTimeFormat is slow to build (~0.1 ms) and
// formatToParts costs microseconds, while the planner converts hundreds of windows.

const DAY_MS = 86_400_000;
const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Midnight UTC of the calendar date, i.e. the "wall clock as if UTC" origin of the day. */
function dateToUtcMs(date: LocalDate): number {
  const m = DATE_RE.exec(date);
  if (!m) throw new RangeError(`not a local date YYYY-MM-DD: ${date}`);
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
}

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

function utcMsToDate(ms: number): LocalDate {
  const d = new Date(ms);
  const y = d.getUTCFullYear();
  return `${y < 0 ? '-' : ''}${pad(Math.abs(y), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
}

export function isoWeekday(date: LocalDate): number {
  const wd = new Date(dateToUtcMs(date)).getUTCDay();
  return wd === 0 ? 7 : wd;
}

export function addDays(date: LocalDate, n: number): LocalDate {
  return utcMsToDate(dateToUtcMs(date) + n * DAY_MS);
}

/**
 * One local day as a piecewise-linear map from seconds of day to instants. Real days
 * have at most one offset change, so two offsets and the transition instant suffice.
 */
export class ZonedDay {
  constructor(
    readonly date: LocalDate,
    /** Wall clock of local midnight expressed as UTC ms (the date at 00:00Z). */
    private readonly wall0: number,
    /** Offset (ms) in force before `transition`. */
    private readonly offBefore: number,
    /** Offset (ms) in force from `transition` on; equal to offBefore on most days. */
    private readonly offAfter: number,
    private readonly transition: EpochMs,
  ) {}

  /** See localToEpoch: gaps map to the first instant after them, overlaps to the first occurrence. */
  toEpoch(secondsOfDay: number): EpochMs {
    const wall = this.wall0 + secondsOfDay * 1000;
    const a = wall - this.offBefore;
    if (this.offBefore === this.offAfter || a < this.transition) return a;
    const b = wall - this.offAfter;
    if (b >= this.transition) return b;
    return this.transition;
  }

  get start(): EpochMs {
    return this.toEpoch(0);
  }

  get end(): EpochMs {
    return this.toEpoch(86_400);
  }
}

export class Zone {
  private readonly fmt: Intl.DateTimeFormat;
  private readonly days = new Map<LocalDate, ZonedDay>();

  /** Throws RangeError for an unknown IANA zone. */
  constructor(readonly tz: string) {
    this.fmt = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      era: 'short',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
  }

  /** Wall clock at `at`, as UTC ms (milliseconds carried over). */
  private wallOf(at: EpochMs): number {
    let y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, bc = false;
    for (const p of this.fmt.formatToParts(at)) {
      switch (p.type) {
        case 'year': y = Number(p.value); break;
        case 'month': mo = Number(p.value); break;
        case 'day': d = Number(p.value); break;
        case 'hour': h = Number(p.value); break;
        case 'minute': mi = Number(p.value); break;
        case 'second': s = Number(p.value); break;
        case 'era': bc = p.value === 'BC' || p.value === 'B'; break;
        default: break;
      }
    }
    if (bc) y = 1 - y;
    const ms = ((at % 1000) + 1000) % 1000;
    const dt = new Date(0);
    dt.setUTCFullYear(y, mo - 1, d);
    dt.setUTCHours(h === 24 ? 0 : h, mi, s, ms);
    return dt.getTime();
  }

  /** UTC offset in ms at instant `at` (local = at + offset). */
  offsetAt(at: EpochMs): number {
    return this.wallOf(at) - at;
  }

  localDateOf(at: EpochMs): LocalDate {
    return utcMsToDate(Math.floor(this.wallOf(at) / DAY_MS) * DAY_MS);
  }

  day(date: LocalDate): ZonedDay {
    const hit = this.days.get(date);
    if (hit) return hit;
    const wall0 = dateToUtcMs(date);
    // Offsets well before and after the day bracket any change within it (none is closer
    // than weeks to another), so the day's transition, if any, lies between them.
    const offBefore = this.offsetAt(wall0 - DAY_MS);
    const offAfter = this.offsetAt(wall0 + 2 * DAY_MS);
    let transition = Number.POSITIVE_INFINITY;
    if (offBefore !== offAfter) {
      let lo = wall0 - DAY_MS; // offset(lo) === offBefore
      let hi = wall0 + 2 * DAY_MS; // offset(hi) === offAfter
      while (hi - lo > 1000) {
        const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
        if (this.offsetAt(mid) === offBefore) lo = mid;
        else hi = mid;
      }
      transition = hi; // transitions fall on whole seconds
    }
    const zd = new ZonedDay(date, wall0, offBefore, offAfter, transition);
    if (this.days.size >= 64) this.days.clear();
    this.days.set(date, zd);
    return zd;
  }

  localToEpoch(date: LocalDate, secondsOfDay: number): EpochMs {
    return this.day(date).toEpoch(secondsOfDay);
  }

  dayBounds(date: LocalDate): { start: EpochMs; end: EpochMs } {
    const d = this.day(date);
    return { start: d.start, end: d.end };
  }

  /** ISO-8601 with the local offset, e.g. 2024-08-15T06:36:00.000+07:00. */
  formatLocal(at: EpochMs): string {
    const wall = this.wallOf(at);
    const off = Math.round((wall - at) / 60_000);
    const sign = off < 0 ? '-' : '+';
    const a = Math.abs(off);
    return `${new Date(wall).toISOString().slice(0, 23)}${sign}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
  }

  /** Local `HH:MM:SS` of an instant. */
  formatTime(at: EpochMs): string {
    return new Date(this.wallOf(at)).toISOString().slice(11, 19);
  }
}

// Thin wrappers for one-off use; hot paths should hold a Zone (building one costs ~0.1 ms).

export function localDateOf(at: EpochMs, tz: string): LocalDate {
  return new Zone(tz).localDateOf(at);
}

/**
 * Instant of local wall time `secondsOfDay` (0..86400; 86400 = next local midnight) on `date`.
 * Nonexistent local times (spring-forward gap) map forward to the first instant after the gap;
 * ambiguous ones (fall-back) to the first occurrence.
 */
export function localToEpoch(date: LocalDate, secondsOfDay: number, tz: string): EpochMs {
  return new Zone(tz).localToEpoch(date, secondsOfDay);
}

/** [local midnight, next local midnight) of `date`. */
export function dayBounds(date: LocalDate, tz: string): { start: EpochMs; end: EpochMs } {
  return new Zone(tz).dayBounds(date);
}

export function formatLocal(at: EpochMs, tz: string): string {
  return new Zone(tz).formatLocal(at);
}
