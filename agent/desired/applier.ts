import type { Clock, TimerHandle } from '../core/clock.js';
import { appliedVersions, NO_DESIRED_STATE, type AppliedVersions, type DesiredMessage, type DesiredState } from '../core/desired.js';
import type { Logger } from '../core/log.js';
import type { Events } from '../events/recorder.js';
import type { Store } from '../store/store.js';
import { verdictOf, type Verdict } from './rules.js';

// The agent's side of desired state (balena-supervisor's split: the link fetches the target
// state, this applies it). Messages arrive decoded, one at a time in arrival order; each is
// decided and stored in one store transaction, and the state that transaction read is handed
// on, so nothing reads it back.

export type Outcome = Verdict['outcome'] | 'kept' | 'stopped';

export interface DesiredApplierContext {
  store: Pick<Store, 'loadDesired' | 'applyIfNewer'>;
  clock: Clock;
  log: Logger;
  events: Events;
  /** The configured groups, in precedence order (for the applied versions). */
  groups: readonly string[];
  /** A document was stored (or an override cleared): re-plan and republish the status with `state`. */
  onChange(state: DesiredState): void | Promise<void>;
  /** First retry of a document the store could not take; doubles up to RETRY_MAX_MS. */
  retryMs?: number;
}

// A retry is one small transaction that fails at once on a full card (the store's own
// write-behind retries every 5 s); waiting longer only keeps a screen on an old assignment after
// space returns (chaos disk: a 45 s full disk left version 2 unapplied 28 s after the release).
export const RETRY_MAX_MS = 15_000;

/**
 * A document the store cannot take (SQLITE_FULL, an I/O error) is neither acknowledged as
 * applied nor reported as rejected: the last one per topic is kept in memory and tried again on
 * a timer, until it is stored or a newer message on that topic replaces it.
 */
export class DesiredApplier {
  private state: DesiredState = NO_DESIRED_STATE;
  private chain: Promise<unknown> = Promise.resolve();
  /** The newest message per topic: an older one that failed is never retried over it. */
  private readonly latest = new Map<string, DesiredMessage>();
  private readonly failed = new Map<string, DesiredMessage>();
  private retryTimer: TimerHandle | undefined;
  private retryDelay: number;
  private stopped = false;
  readonly stats = { storeFailures: 0 };

  constructor(private readonly ctx: DesiredApplierContext) {
    this.retryDelay = ctx.retryMs ?? 5000;
  }

  /** Loads what the store holds (the plan in force across restarts). */
  async start(): Promise<void> {
    this.stopped = false;
    await this.serial(async () => {
      this.state = await this.ctx.store.loadDesired();
    });
  }

  /** Stops retrying and lets a document being stored finish its transaction (the store closes next). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.retryTimer?.cancel();
    this.retryTimer = undefined;
    this.failed.clear();
    await this.idle();
  }

  current(): DesiredState {
    return this.state;
  }

  applied(): AppliedVersions {
    return appliedVersions(this.state, this.ctx.groups);
  }

  /** Documents kept in memory because the store refused them. */
  get failedTopics(): string[] {
    return [...this.failed.keys()];
  }

  /** Resolves when every message offered so far has been handled (retries aside). */
  async idle(): Promise<void> {
    for (let c = this.chain; ; c = this.chain) {
      await c;
      if (c === this.chain) return;
    }
  }

  /** Decides and stores one message. Never rejects; a refusal is reported through `m.reject`. */
  offer(m: DesiredMessage): Promise<Outcome> {
    if (this.stopped) return Promise.resolve('stopped');
    this.latest.set(m.topic, m);
    this.failed.delete(m.topic);
    return this.serial(() => this.attempt(m));
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async attempt(m: DesiredMessage): Promise<Outcome> {
    if (this.stopped) return 'stopped';
    let v: Verdict;
    try {
      v = await this.apply(m);
    } catch (e) {
      this.stats.storeFailures++;
      if (this.latest.get(m.topic) === m) this.failed.set(m.topic, m);
      const version = 'doc' in m.change ? m.change.doc.version : undefined;
      this.ctx.log.error({ err: e, topic: m.topic, version, retryMs: this.retryDelay }, 'desired state could not be stored; kept in memory, retrying');
      this.armRetry();
      return 'kept';
    }
    this.retryDelay = this.ctx.retryMs ?? 5000;
    if (v.outcome === 'applied' || v.outcome === 'cleared') await this.changed(m, v.outcome, v.version);
    return v.outcome;
  }

  /** Throws only when the store does. */
  private async apply(m: DesiredMessage): Promise<Verdict> {
    const { topic, source, change } = m;
    const r = await this.ctx.store.applyIfNewer(source, change, this.ctx.clock.now());
    this.state = r.state;
    const v = verdictOf(change, r);
    const log = this.ctx.log;
    if (v.outcome === 'applied') log.info({ topic, kind: change.kind, source, version: v.version }, 'desired state applied');
    else if (v.outcome === 'cleared') log.info({ topic, source, version: v.version }, 'override cleared');
    else if (v.outcome === 'rejected') m.reject(v.reason);
    else if ('clear' in change) log.debug({ topic }, 'override clear with nothing in force: ignored');
    else log.debug({ topic, version: change.doc.version }, 'already applied: ignored');
    return v;
  }

  /** The document is stored: re-plan whatever happens to its event (a retry would now be ignored). */
  private async changed(m: DesiredMessage, outcome: 'applied' | 'cleared', version: number): Promise<void> {
    const { topic, source, change } = m;
    // keyId is additive: plain mode's event is exactly as before.
    const signed = m.keyId === undefined ? {} : { keyId: m.keyId };
    await this.ctx.events.record('applied', outcome === 'cleared' ? { topic, kind: change.kind, source, version, cleared: true, ...signed } : { topic, kind: change.kind, source, version, ...signed });
    try {
      await this.ctx.onChange(this.state);
    } catch (e) {
      this.ctx.log.error({ err: e, topic }, 'desired state stored, but acting on it failed');
    }
  }

  private armRetry(): void {
    if (this.stopped || this.retryTimer) return;
    const ms = this.retryDelay;
    this.retryDelay = Math.min(RETRY_MAX_MS, ms * 2);
    this.retryTimer = this.ctx.clock.setTimer(ms, () => {
      this.retryTimer = undefined;
      for (const [topic, m] of [...this.failed]) {
        this.failed.delete(topic);
        // Superseded meanwhile (a newer message on the topic): the newer one decides.
        void this.serial(() => (this.latest.get(topic) === m ? this.attempt(m) : Promise.resolve('ignored')));
      }
    });
  }
}
