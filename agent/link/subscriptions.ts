import type { MqttClient } from 'mqtt';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import type { Events } from '../events/recorder.js';

// The link's subscriptions on one connection, as the SUBACK grants them (PROTOCOL v1.1 §8). A
// topic the broker refuses (reason code ≥ 0x80, e.g. 0x87 from an ACL) is named in one
// `subscribe-refused` event and retried alone with backoff; the rest stay granted, and the
// birth never waits on it. Also re-fetches retained copies: subscribing again makes the broker
// send a topic's retained message (MQTT 5 retain handling 0), which recovers a document whose
// message an inbound queue had to drop.

type Subs = Record<string, { qos: 1 }>;

export interface SubscriptionsContext {
  clock: Clock;
  log: Logger;
  events: Events;
  /** The client of the live connection, or undefined while down or stopping. */
  live(): MqttClient | undefined;
  /** True while the intake still has messages waiting (a re-fetch then waits). */
  busy(): boolean;
  retryMs?: number;
  refetchMs?: number;
}

const RETRY_MAX_MS = 15 * 60_000;

export class Subscriptions {
  /** Topics refused on this connection, with their SUBACK reason codes. */
  private readonly refused = new Map<string, number>();
  private retryTimer: TimerHandle | undefined;
  private retryDelay = 0;
  private readonly refetchTopics = new Set<string>();
  private refetchTimer: TimerHandle | undefined;

  constructor(private readonly ctx: SubscriptionsContext) {}

  /** Subscribes to everything on a new connection. Never throws. */
  async onConnect(c: MqttClient, all: Subs): Promise<void> {
    this.reset();
    this.retryDelay = this.ctx.retryMs ?? 30_000;
    await this.subscribe(c, all);
  }

  /** The connection is gone (or the link stops): forget its state and timers. */
  reset(): void {
    this.retryTimer?.cancel();
    this.refetchTimer?.cancel();
    this.refetchTimer = undefined;
    this.refused.clear();
    this.refetchTopics.clear();
  }

  refusedTopics(): string[] {
    return [...this.refused.keys()];
  }

  /** Fetches the broker's retained copy of `topic` again, once the intake has room. */
  refetch(topic: string): void {
    this.refetchTopics.add(topic);
    if (this.refetchTimer) return;
    this.refetchTimer = this.ctx.clock.setTimer(this.ctx.refetchMs ?? 2000, () => {
      this.refetchTimer = undefined;
      const c = this.ctx.live();
      if (!c || this.refetchTopics.size === 0) return;
      // Still busy with a flood: wait, or the copy is dropped again.
      if (this.ctx.busy()) {
        this.refetch([...this.refetchTopics][0]!);
        return;
      }
      const subs: Subs = {};
      for (const t of this.refetchTopics) if (!this.refused.has(t)) subs[t] = { qos: 1 };
      this.refetchTopics.clear();
      if (Object.keys(subs).length === 0) return;
      this.ctx.log.info({ topics: Object.keys(subs) }, 'fetching retained copies of topics whose messages were dropped');
      void this.subscribe(c, subs);
    });
  }

  private async subscribe(c: MqttClient, subs: Subs): Promise<void> {
    const { log } = this.ctx;
    const codes = await new Promise<Map<string, number> | undefined>((resolve) => {
      c.subscribe(subs, (err, granted, packet) => {
        // mqtt.js fails the whole call when any code is ≥ 0x80; the SUBACK still has them all.
        const rcs = (packet as { granted?: number[] } | undefined)?.granted;
        if (!granted || !rcs) {
          if (err) log.warn({ err }, 'mqtt: subscribe failed');
          resolve(undefined);
          return;
        }
        resolve(new Map(granted.map((g, i) => [g.topic, rcs[i] ?? 0x80])));
      });
    });
    if (!codes || this.ctx.live() !== c) return;
    const before = [...this.refused.keys()].sort().join(' ');
    const granted: string[] = [];
    for (const [topic, rc] of codes) {
      if (rc >= 0x80) this.refused.set(topic, rc);
      else if (this.refused.delete(topic)) granted.push(topic);
    }
    if (granted.length > 0) log.info({ topics: granted }, 'mqtt: subscription granted on retry');
    if (this.refused.size === 0) return;
    const refused = [...this.refused].map(([topic, code]) => ({ topic, code }));
    log.warn({ refused, retryMs: this.retryDelay }, 'mqtt: broker refused subscriptions; retrying later');
    // Named once per connection, and again only when the refused set changes.
    if ([...this.refused.keys()].sort().join(' ') !== before) {
      await this.ctx.events.record('subscribe-refused', { topics: refused });
    }
    const ms = this.retryDelay;
    this.retryDelay = Math.min(RETRY_MAX_MS, ms * 2);
    this.retryTimer?.cancel();
    this.retryTimer = this.ctx.clock.setTimer(ms, () => {
      if (this.ctx.live() !== c) return;
      const again: Subs = {};
      for (const t of this.refused.keys()) again[t] = { qos: 1 };
      void this.subscribe(c, again);
    });
  }
}
