import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import type { AgentEvent } from '../core/types.js';
import { agentEvent } from '../protocol/outbound.js';
import type { Store } from '../store/store.js';
import type { EventDetails, EventType } from './types.js';

export type { EventDetails, EventType } from './types.js';

/** What a part that raises events is handed. */
export interface Events {
  /**
   * Writes the event to the store's outbox and wakes whoever sends it. Never rejects: an event
   * that cannot be written is logged, and the caller carries on (an event is never worth more
   * than the work that raised it). `ts` defaults to now; a caller that already read the clock
   * for the event passes that reading so `ts` agrees with the detail.
   */
  record<T extends EventType>(type: T, detail: EventDetails[T], ts?: string): Promise<void>;
}

export interface EventRecorderContext {
  store: Pick<Store, 'recordEvent'>;
  clock: Clock;
  log: Logger;
}

/** The one place an agent event becomes a row in the outbox (PROTOCOL §8: recorded before it is sent). */
export class EventRecorder implements Events {
  private readonly listeners: Array<() => void> = [];

  constructor(private readonly ctx: EventRecorderContext) {}

  /** The outbox's owner asks to be woken after each row (the link, once it exists). */
  onRecorded(listener: () => void): void {
    this.listeners.push(listener);
  }

  async record<T extends EventType>(type: T, detail: EventDetails[T], ts?: string): Promise<void> {
    const e: AgentEvent = ts !== undefined ? { ts, type, detail } : agentEvent(this.ctx.clock.now(), type, detail);
    try {
      await this.ctx.store.recordEvent(e);
    } catch (err) {
      this.ctx.log.error({ err, type, detail }, 'could not record an event');
      return;
    }
    for (const l of this.listeners) {
      try {
        l();
      } catch (err) {
        this.ctx.log.error({ err, type }, 'outbox wake-up threw');
      }
    }
  }
}
