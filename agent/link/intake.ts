import type { Logger } from '../core/log.js';
import { alertDocSchema, assignmentSchema, overrideSchema } from '../protocol/schemas.js';
import type { DesiredChange, DesiredKind, DesiredMessage } from '../core/desired.js';
import type { Assignment, Override } from '../core/types.js';
import type { Clock } from '../core/clock.js';
import { decodeDocument } from '../protocol/decode.js';
import type { KeyRing } from '../protocol/envelope.js';
import { versionProblem, type Trust } from '../protocol/trust.js';
import { InboundQueue } from './inbound-queue.js';
import type { RejectedReporter } from './rejected.js';

// The transport half of desired state (PROTOCOL §3–§5): decode on arrival, a bounded queue in
// arrival order, drops counted and re-fetched. What a document means (version rules, clears,
// the store) is desired/'s, reached through the host.

export type DesiredDecoded = ({ ok: true; keyId?: string } & DesiredChange) | { ok: false; reason: string };

/**
 * Pure and total: every input gives a valid document, a clear, or a reason. In signed mode an
 * empty payload is refused like any unsigned one: clear with a signed override whose
 * `campaigns` is {} and a higher version. `now` (epoch ms) refuses, in both modes, a version
 * more than a day ahead of Unix seconds (poisoning) and an assignment past its `notAfter`.
 */
export function decodeDesired(kind: DesiredKind, target: string, payload: Uint8Array, keys: Trust | KeyRing | undefined, now: number): DesiredDecoded {
  if (payload.length === 0 && !keys) {
    if (kind === 'override') return { ok: true, kind, clear: true };
    if (kind === 'alert') return { ok: true, kind, clear: true };
  }
  if (kind === 'alert') {
    // §10: an alert, or a signed clear (`{"version","clear":true}`, the next version).
    const a = decodeDocument(payload, alertDocSchema, target, keys, kind, now);
    if (!a.ok) return a;
    const why = versionProblem(a.doc.version, now);
    if (why) return { ok: false, reason: why };
    return { ok: true, kind, doc: a.doc, ...(a.keyId === undefined ? {} : { keyId: a.keyId }) };
  }
  const r = kind === 'assignment' ? decodeDocument(payload, assignmentSchema, target, keys, kind, now) : decodeDocument(payload, overrideSchema, target, keys, kind, now);
  if (!r.ok) return r;
  const why = versionProblem(r.doc.version, now);
  if (why) return { ok: false, reason: why };
  const signed = r.keyId === undefined ? {} : { keyId: r.keyId };
  if (kind === 'assignment') {
    const doc = r.doc as Assignment;
    // A retained copy replayed after its end (a wiped store, a broker restored from backup) does nothing.
    if (doc.notAfter !== undefined && !(Date.parse(doc.notAfter) > now)) return { ok: false, reason: `notAfter ${doc.notAfter} has passed` };
    return { ok: true, kind, doc, ...signed };
  }
  return { ok: true, kind, doc: r.doc as Override, ...signed };
}

export interface IntakeContext {
  log: Logger;
  clock: Clock;
  /** Read on every message: a key set applied a moment ago verifies the next document. */
  trust(): Trust | undefined;
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
    const d = decodeDesired(kind, target, payload, this.ctx.trust(), this.ctx.clock.now());
    if (!d.ok) {
      this.ctx.rejected.note(topic, d.reason);
      return 'rejected';
    }
    const { ok: _, keyId, ...change } = d;
    const m: DesiredMessage = { topic, source, change, ...(keyId !== undefined ? { keyId } : {}), reject: (reason) => this.ctx.rejected.note(topic, reason) };
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
