import type { Logger } from '../core/log.js';
import type { Clock } from '../core/clock.js';
import { assignmentSchema, overrideSchema } from '../core/schemas.js';
import type { Assignment, Override } from '../core/types.js';
import type { DesiredKind, Store } from '../store/store.js';
import { decodeDocument, type Decoded } from './decode.js';
import type { KeyRing } from './envelope.js';

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
  /** Called after a document was stored and its event recorded. */
  onApplied(): Promise<void>;
  /** New rows in the outbox (the applied/rejected event). */
  notifyOutbox(): void;
}

export class DesiredIntake {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly ctx: IntakeContext) {}

  /** Resolves when every message received so far has been handled. */
  async idle(): Promise<void> {
    await this.queue;
  }

  /** Handles messages one at a time, in arrival order, so version checks never race. Never rejects. */
  handle(topic: string, kind: DesiredKind, source: string, target: string, payload: Uint8Array): Promise<IntakeOutcome> {
    const run = this.queue.then(() => this.process(topic, kind, source, target, payload));
    const safe = run.catch((e: unknown) => {
      this.ctx.log.error({ err: e, topic }, 'desired-state intake failed');
      return 'rejected' as const;
    });
    this.queue = safe;
    return safe;
  }

  private async process(topic: string, kind: DesiredKind, source: string, target: string, payload: Uint8Array): Promise<IntakeOutcome> {
    const { store, clock, log } = this.ctx;
    const d = decodeDesired(kind, target, payload, this.ctx.keys);
    if (!d.ok) return await this.reject(topic, d.reason);
    const applied = await store.appliedVersion(kind, source);

    if ('clear' in d) {
      const state = await store.loadDesired();
      const current = state.overrides.find((o) => o.source === source);
      if (!current || current.doc === null) {
        log.debug({ topic }, 'override clear with nothing in force: ignored');
        return 'ignored';
      }
      await store.applyDesired('override', source, applied, null, clock.now());
      await this.event('applied', { topic, kind, source, version: applied, cleared: true });
      log.info({ topic, source, version: applied }, 'override cleared');
      await this.ctx.onApplied();
      return 'cleared';
    }

    const version = d.doc.version;
    if (version <= applied) {
      if (version === applied && (await this.sameAsStored(kind, source, d.doc))) {
        log.debug({ topic, version }, 'already applied: ignored');
        return 'ignored';
      }
      return await this.reject(topic, `stale version ${version} <= ${applied}`);
    }
    await store.applyDesired(kind, source, version, d.doc, clock.now());
    await this.event('applied', { topic, kind, source, version });
    log.info({ topic, kind, source, version }, 'desired state applied');
    await this.ctx.onApplied();
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

  private async reject(topic: string, reason: string): Promise<IntakeOutcome> {
    this.ctx.log.warn({ topic, reason }, 'desired state rejected');
    await this.event('rejected', { topic, reason });
    return 'rejected';
  }

  private async event(type: string, detail: Record<string, unknown>): Promise<void> {
    await this.ctx.store.recordEvent({ ts: new Date(this.ctx.clock.now()).toISOString(), type, detail });
    this.ctx.notifyOutbox();
  }
}
