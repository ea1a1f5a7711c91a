import type { Logger } from '../core/log.js';
import { execCommand, isMissingBinary, type RunCommand } from './command.js';

export type SyncState = 'synced' | 'unsynced' | 'unknown';

const DEFAULT_TTL_MS = 60_000;

/**
 * Whether the system clock is NTP-synchronised now, from `timedatectl show -p NTPSynchronized
 * --value` (adjtimex underneath; `/run/systemd/timesync/synchronized` only means "synced once").
 * A Pi has no RTC and boots on fake-hwclock's saved time, so plays before the first sync are
 * flagged. Cached because it costs a subprocess; "unknown" (no timedatectl, no systemd) counts
 * as not synchronised.
 */
export class ClockSync {
  private readonly run: RunCommand;
  private readonly ttlMs: number;
  private last: SyncState = 'unknown';
  private checkedAt = -Infinity;
  private inflight: Promise<boolean> | undefined;
  private warnedMissing = false;

  constructor(private readonly ctx: { log: Logger; runCommand?: RunCommand; ttlMs?: number }) {
    this.run = ctx.runCommand ?? execCommand();
    this.ttlMs = ctx.ttlMs ?? DEFAULT_TTL_MS;
  }

  async synced(): Promise<boolean> {
    if (performance.now() - this.checkedAt < this.ttlMs) return this.last === 'synced';
    this.inflight ??= this.check().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  /** The cached answer without waiting (for hot paths such as recording a play start). */
  lastKnown(): boolean {
    return this.last === 'synced';
  }

  /** Tells "not synchronised" from "cannot tell" (doctor prints different fixes). */
  lastState(): SyncState {
    return this.last;
  }

  private async check(): Promise<boolean> {
    let state: SyncState;
    try {
      const out = (await this.run('timedatectl', ['show', '-p', 'NTPSynchronized', '--value'])).trim();
      state = out === 'yes' ? 'synced' : out === 'no' ? 'unsynced' : 'unknown';
    } catch (e) {
      state = 'unknown';
      if (isMissingBinary(e)) {
        if (!this.warnedMissing) this.ctx.log.warn('timedatectl not found: clock sync state unknown, plays flagged clockSynced=false');
        this.warnedMissing = true;
      } else {
        this.ctx.log.debug({ err: e }, 'timedatectl failed');
      }
    }
    if (state !== this.last) this.ctx.log.info({ from: this.last, to: state }, 'clock sync state');
    this.last = state;
    this.checkedAt = performance.now();
    return state === 'synced';
  }
}
