import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import type { EpochMs } from '../core/types.js';
import type { Store } from '../store/store.js';
import type { LinkHost } from './host.js';
import type { Topics } from '../protocol/topics.js';
import type { Wire } from './wire.js';
import { typedPublisher, type TypedPublish } from '../protocol/encode.js';
import { heartbeat, type Heartbeat, type HeartbeatFields } from '../protocol/outbound.js';

// PROTOCOL §8 heartbeat: QoS 0, not retained, every heartbeatSec while connected, plus one right
// after each connect so the NOC sees fresh health at once. Missed beats are not queued: a
// heartbeat is a "now" reading, and the outbox carries what must not be lost.

export interface HeartbeatContext {
  clock: Clock;
  log: Logger;
  store: Store;
  wire: Wire;
  topics: Topics;
  deviceId: string;
  bootedAt: EpochMs;
  periodSec: number;
  host(): LinkHost | undefined;
}

export class HeartbeatPublisher {
  private timer: TimerHandle | undefined;
  private stopped = true;
  private sending = false;

  private readonly publish: TypedPublish<Promise<number>>;

  constructor(private readonly ctx: HeartbeatContext) {
    this.publish = typedPublisher((k) => ctx.topics.of(k), (t, p, o) => ctx.wire.publish(t, p, o));
  }

  start(): void {
    this.stopped = false;
    this.arm();
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  /** Sends one now (on connect). */
  beat(): void {
    void this.send();
  }

  /** The heartbeat document; exported for tests and the `status` command. */
  async build(): Promise<Heartbeat> {
    const { clock, store, deviceId, bootedAt } = this.ctx;
    let fields: HeartbeatFields = {};
    const host = this.ctx.host();
    if (host) {
      try {
        fields = await host.heartbeatFields();
      } catch (e) {
        this.ctx.log.warn({ err: e }, 'heartbeat fields failed; sending the basics');
      }
    }
    const now = clock.now();
    return heartbeat({ now, deviceId, bootedAt, fields, backlog: await store.outboxCount() });
  }

  private arm(): void {
    if (this.stopped) return;
    this.timer = this.ctx.clock.setTimer(this.ctx.periodSec * 1000, () => {
      void this.send();
      this.arm();
    });
  }

  private async send(): Promise<void> {
    if (this.stopped || this.sending || !this.ctx.wire.connected()) return;
    this.sending = true;
    try {
      const doc = await this.build();
      if (this.ctx.wire.connected()) await this.publish('heartbeat', doc);
    } catch (e) {
      this.ctx.log.debug({ err: e }, 'heartbeat not sent');
    } finally {
      this.sending = false;
    }
  }
}
