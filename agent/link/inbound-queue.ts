import type { Logger } from '../core/log.js';

// A bounded FIFO with one worker: the intake and the command runner take inbound work through
// it, so a flood can never queue more than `maxItems` messages (or `maxBytes` of payload) in
// memory. push() says false when full: the caller drops the message and counts it.

export interface InboundQueueOptions<T> {
  name: string;
  maxItems: number;
  maxBytes: number;
  sizeOf(item: T): number;
  run(item: T): Promise<void>;
  log: Logger;
}

export class InboundQueue<T> {
  private items: T[] = [];
  private bytes = 0;
  private worker: Promise<void> | undefined;
  private stopped = false;
  /** Most items ever waiting at once (tests, bench). */
  highWater = 0;

  constructor(private readonly o: InboundQueueOptions<T>) {}

  get length(): number {
    return this.items.length;
  }

  push(item: T): boolean {
    if (this.stopped) return false;
    const size = this.o.sizeOf(item);
    if (this.items.length >= this.o.maxItems || (this.items.length > 0 && this.bytes + size > this.o.maxBytes)) return false;
    this.items.push(item);
    this.bytes += size;
    this.highWater = Math.max(this.highWater, this.items.length);
    this.worker ??= this.work();
    return true;
  }

  /** Drops what waits (returns how many) and refuses more; the item running finishes. */
  stop(): number {
    this.stopped = true;
    const n = this.items.length;
    this.items = [];
    this.bytes = 0;
    return n;
  }

  /** Resolves when nothing runs or waits. */
  async idle(): Promise<void> {
    while (this.worker) await this.worker;
  }

  private async work(): Promise<void> {
    try {
      for (let item = this.items.shift(); item !== undefined; item = this.items.shift()) {
        this.bytes -= this.o.sizeOf(item);
        try {
          await this.o.run(item);
        } catch (e) {
          this.o.log.error({ err: e, queue: this.o.name }, 'inbound work failed');
        }
      }
    } finally {
      this.worker = undefined;
    }
  }
}
