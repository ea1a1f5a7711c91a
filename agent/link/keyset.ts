import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import type { Events } from '../events/recorder.js';
import type { KeyRing } from '../protocol/envelope.js';
import { decodeKeySet, type KeySet } from '../protocol/trust.js';
import type { Store } from '../store/store.js';
import type { RejectedReporter } from './rejected.js';

// The key set on `{p}/keys` (PROTOCOL §9 v1.1, issue 10 item 3): verified against the configured
// root keys, applied when its version is above the one in force (the assignment rules: the same
// one again is ignored, an older or reused version is `stale`), kept in the store, and in force
// in memory at once, so a document signed by a new key that arrives right behind it verifies.
// It lives in the link because the link's decoders read it on every message; what it means for
// each document (scope, expiry) is the protocol's (trust.ts).

export interface KeySetContext {
  store: Pick<Store, 'loadKeySet' | 'applyKeySetIfNewer'>;
  events: Events;
  clock: Clock;
  log: Logger;
  roots: KeyRing;
  /** Configured key ids (both lists): a key set may not redefine them. */
  taken: ReadonlySet<string>;
  rejected: RejectedReporter;
  /** A new set is in force: documents refused a moment ago may verify now (fetch them again). */
  onChange(set: KeySet): void;
}

export class KeySetIntake {
  private current: KeySet | undefined;
  private envelope: string | undefined;
  private writes: Promise<unknown> = Promise.resolve();

  constructor(private readonly ctx: KeySetContext) {}

  get keySet(): KeySet | undefined {
    return this.current;
  }

  /** The stored set, verified again (the root keys in the config may have changed since). */
  async load(): Promise<void> {
    const { ctx } = this;
    const row = await ctx.store.loadKeySet().catch((e: unknown) => {
      ctx.log.error({ err: e }, 'key set: cannot read the stored one');
      return undefined;
    });
    if (!row) return;
    const d = decodeKeySet(Buffer.from(row.envelope, 'utf8'), ctx.roots, ctx.taken, ctx.clock.now());
    if (!d.ok) {
      ctx.log.warn({ reason: d.reason, version: row.version }, 'key set: the stored one no longer verifies; waiting for the retained one');
      return;
    }
    this.current = d.set;
    this.envelope = row.envelope;
    ctx.log.info({ version: d.set.version, keys: [...d.set.keys.keys()] }, 'key set loaded');
  }

  /** Decides at once (the next message on another topic sees the result). Never throws. */
  handle(topic: string, payload: Buffer): 'applied' | 'ignored' | 'rejected' {
    const { ctx } = this;
    const text = payload.toString('utf8');
    const d = decodeKeySet(payload, ctx.roots, ctx.taken, ctx.clock.now());
    if (!d.ok) {
      ctx.rejected.note(topic, d.reason);
      return 'rejected';
    }
    const applied = this.current?.version ?? 0;
    if (d.set.version <= applied) {
      if (d.set.version === applied && text === this.envelope) return 'ignored';
      ctx.rejected.note(topic, `stale version ${d.set.version} <= ${applied}`);
      return 'rejected';
    }
    this.current = d.set;
    this.envelope = text;
    const at = ctx.clock.now();
    ctx.log.info({ version: d.set.version, signedBy: d.set.signedBy, keys: [...d.set.keys.keys()] }, 'key set applied');
    // The write is serial with the previous one and failures are logged: the set is in force
    // either way, and the broker's retained copy brings it back after a restart.
    this.writes = this.writes.then(async () => {
      try {
        await ctx.store.applyKeySetIfNewer(d.set.version, text, at);
        await ctx.events.record('applied', { topic, kind: 'keys', source: 'fleet', version: d.set.version, keyId: d.set.signedBy });
      } catch (e) {
        ctx.log.error({ err: e, version: d.set.version }, 'key set in force but could not be stored');
      }
    });
    ctx.onChange(d.set);
    return 'applied';
  }

  /** Resolves when the writes started so far are done. */
  async idle(): Promise<void> {
    await this.writes;
  }
}
