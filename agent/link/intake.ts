import type { Logger } from '../core/log.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import { assignmentSchema, overrideSchema } from '../protocol/schemas.js';
import type { Assignment, Override } from '../core/types.js';
import type { DesiredKind, Store } from '../store/store.js';
import { decodeDocument, type Decoded } from '../protocol/decode.js';
import type { KeyRing } from '../protocol/envelope.js';
import { InboundQueue } from './inbound-queue.js';
import type { RejectedReporter } from './rejected.js';

// PROTOCOL §3–§5 desired state intake. Versions are monotonic per topic (per kind and source):
//  - version > applied             → applied, `applied` event, host re-plans, status republished;
//  - version == applied, same doc  → ignored quietly: the retained copy re-delivered on every
//                                    (re)subscribe, or a QoS 1 redelivery;
//  - version == applied, other doc → rejected `stale version N <= N` (a publisher reused a version);
//  - version <  applied            → rejected `stale version N <= M`.
// An empty override payload clears that override (its version stays, so an older one cannot
// come back); in signed mode nothing unsigned is accepted, so clear with a signed override
// whose `campaigns` is {} and a higher version.

export type DesiredDecoded =
  | { ok: true; kind: DesiredKind; doc: Assignment | Override }
  | { ok: true; kind: 'override'; clear: true }
  | { ok: false; reason: string };

/** Pure and total: every input gives a valid document, a clear, or a reason. */
export function decodeDesired(kind: DesiredKind, target: string, payload: Uint8Array, keys: KeyRing | undefined): DesiredDecoded {
  if (kind === 'override' && payload.length === 0 && !keys) return { ok: true, kind, clear: true };
  const r: Decoded<Assignment | Override> =
    kind === 'assignment' ? decodeDocument(payload, assignmentSchema, target, keys) : decodeDocument(payload, overrideSchema, target, keys);
  return r.ok ? { ok: true, kind, doc: r.doc } : r;
}

export type IntakeOutcome = 'applied' | 'cleared' | 'ignored' | 'rejected';

export interface IntakeContext {
  store: Store;
  clock: Clock;
  log: Logger;
  keys: KeyRing | undefined;
  rejected: RejectedReporter;
  /** Called after a document was stored. */
  onApplied(): Promise<void>;
  /** New rows in the outbox (the applied event). */
  notifyOutbox(): void;
  /**
   * A message on this topic was dropped unread (queue full): fetch the broker's retained copy
   * again later, so a valid document that arrived inside a flood is not lost.
   */
  refetch(topic: string): void;
  /** Bounds of the queue between the MQTT client and the store (defaults: 64 messages, 8 MiB). */
  maxQueued?: number;
  maxQueuedBytes?: number;
  /** First retry of a document the store could not take; doubles up to 15 s. */
  retryMs?: number;
}

interface Pending {
  topic: string;
  kind: DesiredKind;
  source: string;
  d: Exclude<DesiredDecoded, { ok: false }>;
  bytes: number;
  /** Arrival number: a retried document never overtakes a newer one on its topic. */
  seq: number;
}

// A retry is one small transaction that fails at once on a full card (the store's own
// write-behind retries every 5 s); waiting longer only keeps a screen on an old assignment after
// space returns (chaos disk: a 45 s full disk left version 2 unapplied 28 s after the release).
const RETRY_MAX_MS = 15_000;

/**
 * Junk is decoded and refused on arrival (cheap, in memory: the reporter folds the `rejected`
 * rows); only documents that decode wait in the bounded queue for the store, one at a time in
 * arrival order, so version checks never race. A document the store cannot take (SQLITE_FULL,
 * an I/O error) is neither acknowledged as applied nor reported as rejected: the last one per
 * topic is kept in memory and tried again on a timer, until a newer message on that topic
 * replaces it.
 */
export class DesiredIntake {
  private readonly queue: InboundQueue<Pending>;
  private readonly failed = new Map<string, Pending>();
  private retryTimer: TimerHandle | undefined;
  private retryDelay: number;
  private stopped = false;
  private arrivals = 0;
  private readonly handled = new Map<string, number>();
  readonly stats = { queued: 0, dropped: 0, storeFailures: 0 };

  constructor(private readonly ctx: IntakeContext) {
    this.retryDelay = ctx.retryMs ?? 5000;
    this.queue = new InboundQueue<Pending>({
      name: 'desired',
      maxItems: ctx.maxQueued ?? 64,
      maxBytes: ctx.maxQueuedBytes ?? 8 * 1024 * 1024,
      sizeOf: (p) => p.bytes,
      run: (p) => this.process(p),
      log: ctx.log,
    });
  }

  /** Messages waiting for the store (tests, status). */
  get queued(): number {
    return this.queue.length;
  }

  get queueHighWater(): number {
    return this.queue.highWater;
  }

  /** Documents kept in memory because the store refused them. */
  get failedTopics(): string[] {
    return [...this.failed.keys()];
  }

  /** Resolves when every message queued so far has been handled. */
  async idle(): Promise<void> {
    await this.queue.idle();
  }

  /** Stops taking messages; what waits is dropped (its retained copy comes again on the next start). */
  stop(): void {
    this.stopped = true;
    this.retryTimer?.cancel();
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
    if (!this.queue.push({ topic, kind, source, d, bytes: payload.length, seq: ++this.arrivals })) {
      this.stats.dropped++;
      this.ctx.rejected.dropped(topic);
      this.ctx.refetch(topic);
      return 'dropped';
    }
    this.stats.queued++;
    return 'queued';
  }

  private async process(p: Pending): Promise<void> {
    // The newest message on a topic supersedes a document the store refused earlier.
    if ((this.handled.get(p.topic) ?? 0) > p.seq) return;
    this.handled.set(p.topic, p.seq);
    this.failed.delete(p.topic);
    try {
      await this.apply(p);
      this.retryDelay = this.ctx.retryMs ?? 5000;
    } catch (e) {
      this.stats.storeFailures++;
      this.failed.set(p.topic, p);
      const version = 'doc' in p.d ? p.d.doc.version : undefined;
      this.ctx.log.error({ err: e, topic: p.topic, version, retryMs: this.retryDelay }, 'desired state could not be stored; kept in memory, retrying');
      this.armRetry();
    }
  }

  private armRetry(): void {
    if (this.stopped || this.retryTimer) return;
    const ms = this.retryDelay;
    this.retryDelay = Math.min(RETRY_MAX_MS, ms * 2);
    this.retryTimer = this.ctx.clock.setTimer(ms, () => {
      this.retryTimer = undefined;
      for (const [topic, p] of [...this.failed]) {
        if (!this.queue.push(p)) break;
        this.failed.delete(topic);
      }
      if (this.failed.size > 0) this.armRetry();
    });
  }

  /** Throws only when the store does. */
  private async apply(p: Pending): Promise<IntakeOutcome> {
    const { store, clock, log } = this.ctx;
    const { topic, kind, source, d } = p;
    const applied = await store.appliedVersion(kind, source);

    if ('clear' in d) {
      const state = await store.loadDesired();
      const current = state.overrides.find((o) => o.source === source);
      if (!current || current.doc === null) {
        log.debug({ topic }, 'override clear with nothing in force: ignored');
        return 'ignored';
      }
      await store.applyDesired('override', source, applied, null, clock.now());
      log.info({ topic, source, version: applied }, 'override cleared');
      await this.applied({ topic, kind, source, version: applied, cleared: true });
      return 'cleared';
    }

    const version = d.doc.version;
    if (version <= applied) {
      if (version === applied && (await this.sameAsStored(kind, source, d.doc))) {
        log.debug({ topic, version }, 'already applied: ignored');
        return 'ignored';
      }
      this.ctx.rejected.note(topic, `stale version ${version} <= ${applied}`);
      return 'rejected';
    }
    await store.applyDesired(kind, source, version, d.doc, clock.now());
    log.info({ topic, kind, source, version }, 'desired state applied');
    await this.applied({ topic, kind, source, version });
    return 'applied';
  }

  private async sameAsStored(kind: DesiredKind, source: string, doc: Assignment | Override): Promise<boolean> {
    const state = await this.ctx.store.loadDesired();
    const list = kind === 'assignment' ? state.assignments : state.overrides;
    const stored = list.find((x) => x.source === source);
    // A cleared override is not "the same": clearing deleted the retained copy on the broker, so
    // seeing that version again is a publisher's mistake worth a `rejected` event.
    return stored !== undefined && stored.doc !== null && JSON.stringify(stored.doc) === JSON.stringify(doc);
  }

  /** The document is stored: re-plan whatever happens to its event (a retry would now be ignored). */
  private async applied(detail: Record<string, unknown>): Promise<void> {
    try {
      await this.ctx.store.recordEvent({ ts: new Date(this.ctx.clock.now()).toISOString(), type: 'applied', detail });
      this.ctx.notifyOutbox();
    } catch (e) {
      this.ctx.log.error({ err: e, detail }, 'desired state applied, but its applied event could not be recorded');
    }
    await this.ctx.onApplied();
  }
}
