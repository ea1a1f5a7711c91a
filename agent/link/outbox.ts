import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import type { Store } from '../store/store.js';
import type { Topics } from './topics.js';
import { RC_NO_MATCHING_SUBSCRIBERS, type Wire } from './wire.js';

// Store-and-forward (PROTOCOL §8). Rows leave the store only after a PUBACK that is not 0x10
// "no matching subscribers". Within one connection the broker forwards our QoS 1 publishes in
// the order sent, and we send oldest first, so a consumer sees events in order. On 0x10 the pass
// stops sending (nobody would get the rest either) and the whole backlog is retried, oldest first,
// after `noSubscriberRetryMs`. After a lost connection, unacked rows are sent again on the next:
// delivery is at-least-once, and consumers dedupe by eventId.

export interface OutboxContext {
  store: Store;
  clock: Clock;
  log: Logger;
  wire: Wire;
  topics: Topics;
  inFlight: number;
  maxEvents: number;
  noSubscriberRetryMs?: number;
  trimEveryMs?: number;
}

export class OutboxPublisher {
  private gen = 0;
  private running = false;
  private again = false;
  private blocked = false;
  /**
   * Send one row alone first after a (re)connect or a no-subscriber pause: had a subscriber
   * appeared while a full window was in flight, a newer row could be delivered before an older
   * one that got 0x10. One at a time until an ack says someone is listening.
   */
  private probe = true;
  private stopped = true;
  private retryTimer: TimerHandle | undefined;
  private trimTimer: TimerHandle | undefined;
  /** Totals since start, for status and the bench. */
  readonly stats = { sent: 0, deleted: 0, noSubscribers: 0, dropped: 0 };

  constructor(private readonly ctx: OutboxContext) {}

  start(): void {
    this.stopped = false;
    void this.trim();
  }

  stop(): void {
    this.stopped = true;
    this.gen++;
    this.retryTimer?.cancel();
    this.trimTimer?.cancel();
  }

  /** A new connection: start over from the oldest row. */
  onConnect(): void {
    this.gen++;
    this.blocked = false;
    this.probe = true;
    this.retryTimer?.cancel();
    this.kick();
  }

  onDisconnect(): void {
    this.gen++;
    this.retryTimer?.cancel();
  }

  /** New rows (or a new connection): drain if connected. Cheap to call often. */
  kick(): void {
    if (this.stopped || this.blocked || !this.ctx.wire.connected()) return;
    if (this.running) {
      this.again = true;
      return;
    }
    void this.drain();
  }

  /** Resolves when no drain is running (tests, bench). */
  async idle(): Promise<void> {
    while (this.running) await new Promise((r) => setTimeout(r, 5));
  }

  private async drain(): Promise<void> {
    this.running = true;
    const g = this.gen;
    try {
      do {
        this.again = false;
        await this.pass(g);
      } while (this.again && g === this.gen && !this.blocked && !this.stopped);
    } catch (e) {
      this.ctx.log.warn({ err: e }, 'outbox drain interrupted');
    } finally {
      this.running = false;
    }
    if (g !== this.gen) this.kick();
  }

  private async pass(g: number): Promise<void> {
    const { store, wire, topics, log } = this.ctx;
    const full = Math.max(1, this.ctx.inFlight);
    const batch = Math.max(1000, full * 10);
    const acked: number[] = [];
    let inflight = 0;
    let halt: 'no-subscribers' | 'error' | undefined;
    let wake: (() => void) | undefined;
    const settle = (): void => {
      inflight--;
      const w = wake;
      wake = undefined;
      w?.();
    };
    // Deletes run behind the sends (chained, so in order); the cursor keeps this pass from
    // reading a row twice, and the pass awaits them before it ends, so the next pass cannot either.
    let deleting: Promise<void> = Promise.resolve();
    const flush = (): void => {
      if (acked.length === 0) return;
      const ids = acked.splice(0);
      deleting = deleting.then(async () => {
        await store.outboxDelete(ids);
        this.stats.deleted += ids.length;
      });
    };

    try {
      // The next page is read while the current one is being sent, so the window never waits on SQLite.
      let page = store.outboxPeek(batch, 0);
      outer: for (;;) {
        const rows = await page;
        const last = rows.at(-1);
        if (!last) break;
        page = rows.length < batch ? Promise.resolve([]) : store.outboxPeek(batch, last.id);
        for (const row of rows) {
          const limit = this.probe ? 1 : full;
          while (inflight >= limit) await new Promise<void>((r) => { wake = r; });
          if (halt || g !== this.gen || !wire.connected()) break outer;
          inflight++;
          this.stats.sent++;
          wire.publish(topics.outbox(row.kind), row.payload, { qos: 1 }).then(
            (rc) => {
              if (rc === RC_NO_MATCHING_SUBSCRIBERS) {
                this.stats.noSubscribers++;
                halt ??= 'no-subscribers';
              } else {
                this.probe = false;
                acked.push(row.id);
              }
              settle();
            },
            () => {
              halt ??= 'error';
              settle();
            },
          );
        }
        if (acked.length >= full) flush();
        // A short page means we reached the end when it was read; rows added since are
        // picked up by the next pass (kick() sets `again`).
      }
      await page.catch(() => []);
      while (inflight > 0) await new Promise<void>((r) => { wake = r; });
      flush();
    } finally {
      await deleting;
    }
    if (halt === 'no-subscribers' && g === this.gen && !this.stopped) {
      const ms = this.ctx.noSubscriberRetryMs ?? 30_000;
      log.info({ retryMs: ms }, 'outbox: no subscribers on the event topics; keeping rows, retrying later');
      this.blocked = true;
      this.retryTimer?.cancel();
      this.retryTimer = this.ctx.clock.setTimer(ms, () => {
        this.blocked = false;
        this.probe = true;
        this.kick();
      });
    }
  }

  private async trim(): Promise<void> {
    if (this.stopped) return;
    const { store, clock, log } = this.ctx;
    try {
      // Over the cap: cut to one below it, so the outbox-dropped event itself fits and the next
      // round does not drop again because of it.
      const max = this.ctx.maxEvents;
      const dropped = (await store.outboxCount()) > max ? await store.outboxTrim(Math.max(1, max - 1)) : 0;
      if (dropped > 0) {
        this.stats.dropped += dropped;
        log.warn({ dropped, max: this.ctx.maxEvents }, 'outbox full: oldest events dropped');
        await store.recordEvent({ ts: new Date(clock.now()).toISOString(), type: 'outbox-dropped', detail: { count: dropped, max: this.ctx.maxEvents } });
        this.kick();
      }
    } catch (e) {
      log.warn({ err: e }, 'outbox trim failed');
    }
    if (!this.stopped) this.trimTimer = clock.setTimer(this.ctx.trimEveryMs ?? 60_000, () => void this.trim());
  }
}
