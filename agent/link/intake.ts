import type { Logger } from '../core/log.js';
import { assignmentSchema, overrideSchema } from '../protocol/schemas.js';
import type { DesiredChange, DesiredKind, DesiredMessage } from '../core/desired.js';
import { decodeDocument } from '../protocol/decode.js';
import type { KeyRing } from '../protocol/envelope.js';
import { InboundQueue } from './inbound-queue.js';
import type { RejectedReporter } from './rejected.js';

// The transport half of desired state (PROTOCOL §3–§5): decode on arrival, a bounded queue in
// arrival order, drops counted and re-fetched. What a document means (version rules, clears,
// the store) is desired/'s, reached through the host.

export type DesiredDecoded = ({ ok: true } & DesiredChange) | { ok: false; reason: string };

/**
 * Pure and total: every input gives a valid document, a clear, or a reason. In signed mode an
 * empty payload is refused like any unsigned one: clear with a signed override whose
 * `campaigns` is {} and a higher version.
 */
export function decodeDesired(kind: DesiredKind, target: string, payload: Uint8Array, keys: KeyRing | undefined): DesiredDecoded {
  if (kind === 'override' && payload.length === 0 && !keys) return { ok: true, kind, clear: true };
  if (kind === 'assignment') {
    const r = decodeDocument(payload, assignmentSchema, target, keys);
    return r.ok ? { ok: true, kind, doc: r.doc } : r;
  }
  const r = decodeDocument(payload, overrideSchema, target, keys);
  return r.ok ? { ok: true, kind, doc: r.doc } : r;
}

export interface IntakeContext {
  log: Logger;
  keys: KeyRing | undefined;
  rejected: RejectedReporter;
  /** Where decoded documents go, one at a time (undefined before the host is attached). */
  deliver(m: DesiredMessage): Promise<unknown> | undefined;
  /**
   * A message on this topic was dropped unread (queue full): fetch the broker's retained copy
   * again later, so a valid document that arrived inside a flood is not lost.
   */
  refetch(topic: string): void;
  /** Bounds of the queue between the MQTT client and the store (defaults: 64 messages, 8 MiB). */
  maxQueued?: number;
  maxQueuedBytes?: number;
}

interface Pending {
  m: DesiredMessage;
  bytes: number;
}

/**
 * Junk is decoded and refused on arrival (cheap, in memory: the reporter folds the `rejected`
 * rows); only documents that decode wait in the bounded queue, and they are handed on one at a
 * time in arrival order, so version checks never race.
 */
export class DesiredIntake {
  private readonly queue: InboundQueue<Pending>;
  private stopped = false;
  readonly stats = { queued: 0, dropped: 0 };

  constructor(private readonly ctx: IntakeContext) {
    this.queue = new InboundQueue<Pending>({
      name: 'desired',
      maxItems: ctx.maxQueued ?? 64,
      maxBytes: ctx.maxQueuedBytes ?? 8 * 1024 * 1024,
      sizeOf: (p) => p.bytes,
      run: async (p) => {
        const handled = ctx.deliver(p.m);
        if (handled) await handled;
        else ctx.log.warn({ topic: p.m.topic }, 'desired state arrived before the host was attached: dropped');
      },
      log: ctx.log,
    });
  }

  /** Messages waiting to be handed on (tests, status). */
  get queued(): number {
    return this.queue.length;
  }

  get queueHighWater(): number {
    return this.queue.highWater;
  }

  /** Resolves when every message queued so far has been handled. */
  async idle(): Promise<void> {
    await this.queue.idle();
  }

  /** Stops taking messages; what waits is dropped (its retained copy comes again on the next start). */
  stop(): void {
    this.stopped = true;
    this.queue.stop();
  }

  /** Decodes at once; queues what decodes. Never throws. */
  handle(topic: string, kind: DesiredKind, source: string, target: string, payload: Uint8Array): 'queued' | 'rejected' | 'dropped' {
    if (this.stopped) return 'dropped';
    const d = decodeDesired(kind, target, payload, this.ctx.keys);
    if (!d.ok) {
      this.ctx.rejected.note(topic, d.reason);
      return 'rejected';
    }
    const { ok: _, ...change } = d;
    const m: DesiredMessage = { topic, source, change, reject: (reason) => this.ctx.rejected.note(topic, reason) };
    if (!this.queue.push({ m, bytes: payload.length })) {
      this.stats.dropped++;
      this.ctx.rejected.dropped(topic);
      this.ctx.refetch(topic);
      return 'dropped';
    }
    this.stats.queued++;
    return 'queued';
  }
}
