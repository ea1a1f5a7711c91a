import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import type { EventDetails, Events } from '../events/recorder.js';

// PROTOCOL v1.1 §3: `rejected` events are rate-limited per topic, at most one row a minute, so
// a flood of junk cannot flood the outbox (issue 14: 51,175 rows, each its own fsync'd
// transaction, queued ahead of the play records). The first rejection on a topic is written at
// once with its reason; later ones in that window are only counted in memory, and when the
// window ends one row carries the count (and the last reason) and opens the next window. So a
// topic that keeps being hit gets one row per window, and a quiet one loses nothing.
// Messages dropped unread because an inbound queue was full are counted the same way (`dropped`).

export const QUEUE_FULL = 'inbound queue full: dropped unread';

export interface RejectedContext {
  clock: Clock;
  log: Logger;
  events: Events;
  /** 0 writes every rejection (tests that check each reason). */
  windowMs?: number;
}

interface Window {
  count: number;
  dropped: number;
  reason: string;
  timer: TimerHandle;
}

export class RejectedReporter {
  private readonly windows = new Map<string, Window>();
  private writing: Promise<void> = Promise.resolve();
  readonly stats = { rows: 0, folded: 0, dropped: 0 };

  constructor(private readonly ctx: RejectedContext) {}

  /** A message on `topic` was refused for `reason`. Never throws, never awaits the store. */
  note(topic: string, reason: string): void {
    this.add(topic, reason, false);
  }

  /** A message on `topic` was dropped unread (an inbound queue was full). */
  dropped(topic: string): void {
    this.stats.dropped++;
    this.add(topic, QUEUE_FULL, true);
  }

  /** Resolves when every row noted so far is written. */
  async idle(): Promise<void> {
    for (let w = this.writing; ; w = this.writing) {
      await w;
      if (w === this.writing) return;
    }
  }

  /** Writes what is still folded (at stop; the store must still be open). */
  async flush(): Promise<void> {
    for (const [topic, w] of [...this.windows]) {
      w.timer.cancel();
      this.windows.delete(topic);
      if (w.count > 0) this.writeFolded(topic, w);
    }
    await this.idle();
  }

  private add(topic: string, reason: string, dropped: boolean): void {
    const windowMs = this.ctx.windowMs ?? 60_000;
    const w = this.windows.get(topic);
    if (w) {
      w.count++;
      if (dropped) w.dropped++;
      else w.reason = reason;
      this.stats.folded++;
      this.ctx.log.debug({ topic, reason, folded: w.count }, 'inbound message rejected (folded)');
      return;
    }
    this.ctx.log.warn({ topic, reason }, dropped ? 'inbound message dropped' : 'inbound message rejected');
    this.write({ topic, reason, ...(dropped ? { dropped: 1 } : {}) });
    if (windowMs > 0) this.open(topic, reason, windowMs);
  }

  private open(topic: string, reason: string, windowMs: number): void {
    const w: Window = {
      count: 0,
      dropped: 0,
      reason,
      timer: this.ctx.clock.setTimer(windowMs, () => {
        this.windows.delete(topic);
        if (w.count === 0) return;
        this.writeFolded(topic, w);
        // The folded row is this window's one row: the next rejection waits for the next window.
        this.open(topic, w.reason, windowMs);
      }),
    };
    this.windows.set(topic, w);
  }

  private writeFolded(topic: string, w: Window): void {
    this.ctx.log.warn({ topic, reason: w.reason, count: w.count, dropped: w.dropped }, 'inbound messages rejected (folded into one event)');
    this.write({ topic, reason: w.reason, count: w.count, ...(w.dropped > 0 ? { dropped: w.dropped } : {}) });
  }

  /** One at a time, so idle() and flush() know when every row noted so far is written. */
  private write(detail: EventDetails['rejected']): void {
    this.stats.rows++;
    this.writing = this.writing.then(() => this.ctx.events.record('rejected', detail));
  }
}
