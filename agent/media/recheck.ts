import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import { sha256Of, type CachedFile } from './index-file.js';

export type RecheckResult = { ok: true } | { ok: false; gone: boolean; reason: string };

export interface RecheckHost {
  /** The cache's files right now (a file evicted meanwhile is simply not there any more). */
  files(): ReadonlyMap<string, CachedFile>;
  /** Media the plan in force wants: re-hashed first after a start, so the screen plays soonest. */
  pinned(sha256: string): boolean;
  pathOf(f: CachedFile): string;
  /** Called once per check of a file still in the cache, in order. */
  onResult(f: CachedFile, r: RecheckResult, firstSinceStart: boolean): Promise<void>;
}

export interface RecheckOpts {
  clock: Clock;
  log: Logger;
  /** One file re-hashed per period once the start-up sweep is done (default 5 min). */
  everyMs?: number;
}

/** Default period: 288 files a day, more than a screen's cache holds, at ~1 s of reading each. */
export const RECHECK_EVERY_MS = 5 * 60_000;

/**
 * Re-reads cached files: a card rots, and bytes that changed while the agent was stopped (or
 * since the download) would otherwise be played and reported under a hash they no longer
 * have. Every file found at start is "unchecked" until re-hashed (the cache hands out none of
 * those); the sweep hashes them one at a time, pinned ones first, then the most recently used.
 * Afterwards a slow timer re-hashes the file checked longest ago. Hashing streams 256 KB reads,
 * so the event loop is never held for more than one chunk.
 */
export class Rechecker {
  private readonly unchecked = new Set<string>();
  private readonly checkedAt = new Map<string, number>();
  private readonly urged = new Set<string>();
  private running: Promise<void> = Promise.resolve();
  private sweeping = false;
  private timer: TimerHandle | undefined;
  private stopped = false;
  private readonly abort = new AbortController();
  private readonly everyMs: number;

  constructor(
    private readonly host: RecheckHost,
    private readonly o: RecheckOpts,
  ) {
    this.everyMs = o.everyMs ?? RECHECK_EVERY_MS;
  }

  /**
   * Every file now in the cache needs a re-hash before it may be played. The sweep begins on
   * the next turn of the event loop, once the caller has said what the plan wants (want()).
   */
  start(): void {
    for (const sha of this.host.files().keys()) this.unchecked.add(sha);
    this.sweep(true);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.abort.abort();
    await this.running;
  }

  isChecked(sha: string): boolean {
    return !this.unchecked.has(sha);
  }

  /** Somebody wants to play it: hash it next. */
  urge(sha: string): void {
    if (this.unchecked.has(sha)) this.urged.add(sha);
  }

  /** Hashed by this process just now (a download): nothing to re-check. */
  markChecked(sha: string): void {
    this.unchecked.delete(sha);
    this.checkedAt.set(sha, this.o.clock.monotonic());
  }

  forget(sha: string): void {
    this.unchecked.delete(sha);
    this.urged.delete(sha);
    this.checkedAt.delete(sha);
  }

  /** Resolves when no start-up re-hash is pending (tests, bench). */
  async idle(): Promise<void> {
    while (this.sweeping) await this.running;
  }

  private sweep(defer = false): void {
    if (this.sweeping || this.stopped) return;
    this.sweeping = true;
    this.running = (async () => {
      if (defer) await new Promise<void>((r) => setImmediate(r));
      for (;;) {
        const f = this.nextUnchecked();
        if (!f || this.stopped) break;
        await this.check(f, true);
      }
      this.sweeping = false;
      this.arm();
    })();
  }

  private nextUnchecked(): CachedFile | undefined {
    const files = this.host.files();
    for (const sha of [...this.unchecked]) if (!files.has(sha)) this.forget(sha);
    const pick = (pred: (f: CachedFile) => boolean): CachedFile | undefined => {
      let best: CachedFile | undefined;
      for (const sha of this.unchecked) {
        const f = files.get(sha)!;
        if (pred(f) && (!best || f.lastUsed > best.lastUsed)) best = f;
      }
      return best;
    };
    return pick((f) => this.urged.has(f.sha256)) ?? pick((f) => this.host.pinned(f.sha256)) ?? pick(() => true);
  }

  private arm(): void {
    if (this.stopped || this.timer) return;
    this.timer = this.o.clock.setTimer(this.everyMs, () => {
      this.timer = undefined;
      if (this.unchecked.size > 0) return this.sweep(); // a file came back unchecked meanwhile
      const oldest = this.oldestChecked();
      this.running = (oldest ? this.check(oldest, false) : Promise.resolve()).finally(() => this.arm());
    });
  }

  private oldestChecked(): CachedFile | undefined {
    let best: CachedFile | undefined;
    let bestAt = Infinity;
    for (const f of this.host.files().values()) {
      const at = this.checkedAt.get(f.sha256) ?? -Infinity;
      if (at < bestAt) [best, bestAt] = [f, at];
    }
    return best;
  }

  private async check(f: CachedFile, first: boolean): Promise<void> {
    let r: RecheckResult;
    try {
      const got = await sha256Of(this.host.pathOf(f), this.abort.signal);
      r = got === f.sha256 ? { ok: true } : { ok: false, gone: false, reason: `cached file corrupted: content hashes to ${got}, not to its sha256 ${f.sha256}` };
    } catch (e) {
      if (this.stopped) return; // stays unchecked: the next start hashes it again
      const err = e as NodeJS.ErrnoException;
      r = { ok: false, gone: err.code === 'ENOENT', reason: `cached file unreadable: ${err.code ?? err.message}` };
    }
    if (this.stopped || this.host.files().get(f.sha256) !== f) return; // evicted or replaced meanwhile
    const wasUnchecked = this.unchecked.has(f.sha256);
    this.urged.delete(f.sha256);
    if (r.ok) this.markChecked(f.sha256);
    else this.forget(f.sha256);
    if (!r.ok) this.o.log.warn({ sha256: f.sha256, file: f.name, reason: r.reason }, 'media re-hash failed');
    await this.host.onResult(f, r, first && wasUnchecked).catch((e: unknown) => this.o.log.warn({ err: e }, 'media re-hash handling failed'));
  }
}
