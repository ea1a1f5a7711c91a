import type { EpochMs } from './types.js';

export interface TimerHandle {
  cancel(): void;
}

/**
 * Wall-clock time plus timers. Everything that waits goes through a Clock so the
 * engine can run a simulated day in milliseconds (VirtualClock) and tests can jump time.
 */
export interface Clock {
  now(): EpochMs;
  /** Monotonic milliseconds; unaffected by wall-clock steps (used to detect clock jumps). */
  monotonic(): number;
  setTimer(ms: number, fn: () => void): TimerHandle;
}

export class SystemClock implements Clock {
  now(): EpochMs {
    return Date.now();
  }
  monotonic(): number {
    return performance.now();
  }
  setTimer(ms: number, fn: () => void): TimerHandle {
    // setTimeout overflows (fires at once) beyond 2^31-1 ms; re-arm in chunks instead.
    const MAX = 2 ** 31 - 1;
    let t: NodeJS.Timeout;
    const arm = (left: number): void => {
      t = setTimeout(() => (left > MAX ? arm(left - MAX) : fn()), Math.min(Math.max(0, left), MAX));
    };
    arm(ms);
    return { cancel: () => clearTimeout(t) };
  }
}

interface VirtualTimer {
  /** Monotonic instant: like the kernel's timers, a wall-clock step neither fires nor delays it. */
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * A clock that only moves when told. `advanceTo` fires due timers in order of their
 * instant (ties in order of creation), letting each timer's callback (and the promise
 * jobs it queues) run before the next, so async code sees a consistent timeline.
 * Wall time is monotonic time plus an offset that only `jump` changes, so a jump behaves
 * as an NTP step does on a real box: timers keep their monotonic deadlines.
 */
export class VirtualClock implements Clock {
  private offset: number;
  private mono = 0;
  private seq = 0;
  private timers: VirtualTimer[] = [];

  constructor(start: EpochMs) {
    this.offset = start;
  }
  now(): EpochMs {
    return this.mono + this.offset;
  }
  monotonic(): number {
    return this.mono;
  }
  setTimer(ms: number, fn: () => void): TimerHandle {
    const timer: VirtualTimer = { at: this.mono + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.timers.push(timer);
    return { cancel: () => { timer.cancelled = true; } };
  }
  /** Step the wall clock without moving monotonic time: a simulated NTP correction. */
  jump(to: EpochMs): void {
    this.offset = to - this.mono;
  }
  pendingTimers(): number {
    return this.timers.filter((x) => !x.cancelled).length;
  }
  /** Runs until the wall clock reads `target` (nothing happens if it already reads later). */
  async advanceTo(target: EpochMs, settle: () => Promise<void> = flushJobs): Promise<void> {
    for (;;) {
      await settle();
      this.timers = this.timers.filter((x) => !x.cancelled);
      const until = target - this.offset;
      let next: VirtualTimer | undefined;
      for (const tm of this.timers) {
        if (tm.at <= until && (!next || tm.at < next.at || (tm.at === next.at && tm.seq < next.seq))) next = tm;
      }
      if (!next) break;
      this.mono = Math.max(this.mono, next.at);
      next.cancelled = true;
      next.fn();
    }
    this.mono = Math.max(this.mono, target - this.offset);
    await settle();
  }
  async advanceBy(ms: number): Promise<void> {
    await this.advanceTo(this.now() + ms);
  }
}

/** Let queued promise jobs and I/O callbacks (e.g. sqlite3's thread pool) run. */
export async function flushJobs(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise<void>((r) => setImmediate(r));
}
