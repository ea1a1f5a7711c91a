import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import type { OutboxRow, Store } from '../store/store.js';
import type { Events } from '../events/recorder.js';
import type { Topics } from '../protocol/topics.js';
import { RC_NO_MATCHING_SUBSCRIBERS, type Wire } from './wire.js';

// Store-and-forward (PROTOCOL §8, v1.1): two lanes, `play` and `event`, each its own queue over
// the one outbox table, with its own cursor, in-flight window and retry timer. Rows leave the
// store only after a PUBACK that is neither 0x10 "no matching subscribers" nor an error code.
// Within one connection the broker forwards our QoS 1 publishes in the order sent, and each lane
// sends oldest first, so a consumer sees each topic in order. A refusal (0x10, or an error reason
// code such as 0x87 "not authorized") stops only that lane: the rows already in flight settle
// (at most the lane's window), nothing more is sent on it, and the lane retries from its oldest
// row after `noSubscriberRetryMs`. The other lane never waits for it: a NOC that subscribes to
// `play` alone gets every play while `event` rows pile up unheard. After a lost connection,
// unacked rows are sent again on the next: delivery is at-least-once, consumers dedupe by eventId.

export type LaneKind = OutboxRow['kind'];
export const LANES: readonly LaneKind[] = ['play', 'event'];

export interface OutboxContext {
  store: Store;
  events: Events;
  clock: Clock;
  log: Logger;
  wire: Wire;
  topics: Topics;
  inFlight: number;
  maxEvents: number;
  noSubscriberRetryMs?: number;
  trimEveryMs?: number;
}

export interface LaneStats {
  sent: number;
  deleted: number;
  noSubscribers: number;
  /** PUBACKs with an error reason code (an ACL refusal, a quota). */
  refused: number;
}

class OutboxLane {
  private gen = 0;
  private running = false;
  /** The drain of the moment (settled when not `running`); never rejects. */
  private draining: Promise<void> = Promise.resolve();
  private again = false;
  private blocked = false;
  /**
   * This lane was paused and nothing has been acked since: repeats of the pause are logged at
   * debug, so a screen nobody listens to does not write two journal lines a minute to its card.
   */
  private pauseLogged = false;
  /**
   * Send one row alone first after a (re)connect or a pause: had a subscriber appeared while a
   * full window was in flight, a newer row could be delivered before an older one that got 0x10.
   * One at a time until an ack says someone is listening.
   */
  private probe = true;
  private retryTimer: TimerHandle | undefined;
  readonly stats: LaneStats = { sent: 0, deleted: 0, noSubscribers: 0, refused: 0 };

  constructor(
    readonly kind: LaneKind,
    private readonly ctx: OutboxContext,
    private readonly stopped: () => boolean,
  ) {}

  stop(): void {
    this.gen++;
    this.retryTimer?.cancel();
  }

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

  kick(): void {
    if (this.stopped() || this.blocked || !this.ctx.wire.connected()) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.draining = this.drain();
  }

  /** The running drain, or undefined when none runs. */
  get drained(): Promise<void> | undefined {
    return this.running ? this.draining : undefined;
  }

  private async drain(): Promise<void> {
    this.running = true;
    const g = this.gen;
    try {
      do {
        this.again = false;
        await this.pass(g);
      } while (this.again && g === this.gen && !this.blocked && !this.stopped());
    } catch (e) {
      this.ctx.log.warn({ err: e, lane: this.kind }, 'outbox drain interrupted');
    } finally {
      this.running = false;
    }
    if (g !== this.gen) this.kick();
  }

  private async pass(g: number): Promise<void> {
    const { store, wire, topics } = this.ctx;
    const full = Math.max(1, this.ctx.inFlight);
    const batch = Math.max(1000, full * 10);
    const topic = topics.outbox(this.kind);
    const acked: number[] = [];
    let inflight = 0;
    let halt: { why: 'no-subscribers' | 'refused' | 'error'; rc?: number } | undefined;
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
      let page = store.outboxPeek(batch, 0, this.kind);
      outer: for (;;) {
        const rows = await page;
        const last = rows.at(-1);
        if (!last) break;
        page = rows.length < batch ? Promise.resolve([]) : store.outboxPeek(batch, last.id, this.kind);
        for (const row of rows) {
          const limit = this.probe ? 1 : full;
          while (inflight >= limit) await new Promise<void>((r) => { wake = r; });
          if (halt || g !== this.gen || !wire.connected()) break outer;
          inflight++;
          this.stats.sent++;
          wire.publish(topic, row.payload, { qos: 1 }).then(
            (rc) => {
              if (rc === RC_NO_MATCHING_SUBSCRIBERS) {
                this.stats.noSubscribers++;
                halt ??= { why: 'no-subscribers', rc };
              } else {
                this.probe = false;
                this.pauseLogged = false;
                acked.push(row.id);
              }
              settle();
            },
            (e: unknown) => {
              // mqtt.js turns a PUBACK error reason code into an error carrying it as `code`.
              const rc = (e as { code?: unknown })?.code;
              if (typeof rc === 'number') {
                this.stats.refused++;
                halt ??= { why: 'refused', rc };
              } else {
                halt ??= { why: 'error' };
              }
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
    // A lost connection is resumed by onConnect; anything else waits for this lane's timer.
    if (halt && g === this.gen && !this.stopped() && wire.connected()) this.pause(halt);
  }

  private pause(halt: { why: string; rc?: number }): void {
    const ms = this.ctx.noSubscriberRetryMs ?? 30_000;
    const msg =
      halt.why === 'no-subscribers'
        ? 'outbox: no subscribers on this lane; keeping its rows, retrying later'
        : 'outbox: publish refused on this lane; keeping its rows, retrying later';
    const fields = { lane: this.kind, topic: this.ctx.topics.outbox(this.kind), rc: halt.rc, retryMs: ms };
    if (this.pauseLogged) this.ctx.log.debug(fields, msg);
    else this.ctx.log.info(fields, msg);
    this.pauseLogged = true;
    this.blocked = true;
    this.retryTimer?.cancel();
    this.retryTimer = this.ctx.clock.setTimer(ms, () => {
      this.blocked = false;
      this.probe = true;
      this.kick();
    });
  }
}

export class OutboxPublisher {
  private stopped = true;
  private trimTimer: TimerHandle | undefined;
  private dropped = 0;
  readonly lanes: Readonly<Record<LaneKind, OutboxLane>>;

  constructor(private readonly ctx: OutboxContext) {
    const stopped = (): boolean => this.stopped;
    this.lanes = { play: new OutboxLane('play', ctx, stopped), event: new OutboxLane('event', ctx, stopped) };
  }

  /** Totals over both lanes since start, for status, tests and the bench. */
  get stats(): LaneStats & { dropped: number } {
    const out = { sent: 0, deleted: 0, noSubscribers: 0, refused: 0, dropped: this.dropped };
    for (const k of LANES) {
      const s = this.lanes[k].stats;
      out.sent += s.sent;
      out.deleted += s.deleted;
      out.noSubscribers += s.noSubscribers;
      out.refused += s.refused;
    }
    return out;
  }

  start(): void {
    this.stopped = false;
    void this.trim();
  }

  stop(): void {
    this.stopped = true;
    for (const k of LANES) this.lanes[k].stop();
    this.trimTimer?.cancel();
  }

  /** A new connection: each lane starts over from its oldest row. */
  onConnect(): void {
    for (const k of LANES) this.lanes[k].onConnect();
  }

  onDisconnect(): void {
    for (const k of LANES) this.lanes[k].onDisconnect();
  }

  /** New rows (or a new connection): drain if connected. Cheap to call often. */
  kick(): void {
    for (const k of LANES) this.lanes[k].kick();
  }

  /** Resolves when no drain is running (tests, bench, stop). */
  async idle(): Promise<void> {
    for (;;) {
      // A drain that ends on a new connection starts the next one itself: wait for that one too.
      const running = LANES.map((k) => this.lanes[k].drained).filter((d) => d !== undefined);
      if (running.length === 0) return;
      await Promise.all(running);
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
        this.dropped += dropped;
        log.warn({ dropped, max: this.ctx.maxEvents }, 'outbox full: oldest events dropped (event rows before play rows)');
        // The recorder wakes the lanes (it kicks this outbox).
        await this.ctx.events.record('outbox-dropped', { count: dropped, max: this.ctx.maxEvents });
      }
    } catch (e) {
      log.warn({ err: e }, 'outbox trim failed');
    }
    if (!this.stopped) this.trimTimer = clock.setTimer(this.ctx.trimEveryMs ?? 60_000, () => void this.trim());
  }
}
