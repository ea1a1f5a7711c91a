import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import { diskFreeMB } from '../fsx/free-space.js';

const CHECK_MS = 60_000;

/**
 * The free-space floor of dataDir (statfs, no write): under it the store reports `degraded` and
 * one `disk-low` event is recorded, before SQLite hits the wall. 10% hysteresis, so a card
 * hovering at the floor does not flood the event topic.
 */
export class FreeSpaceFloor {
  private timer: TimerHandle | undefined;
  private lowMB: number | undefined;
  private stopped = true;

  constructor(private readonly ctx: { dir: string; minFreeMB: number; clock: Clock; log: Logger; onLow: (freeMB: number, minFreeMB: number) => Promise<void> }) {}

  async start(): Promise<void> {
    this.stopped = false;
    await this.check();
    this.arm();
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  /** Free MB while under the floor, else undefined. */
  low(): number | undefined {
    return this.lowMB;
  }

  async check(): Promise<void> {
    if (this.stopped) return;
    const min = this.ctx.minFreeMB;
    let free: number;
    try {
      free = await diskFreeMB(this.ctx.dir);
    } catch {
      return;
    }
    const wasLow = this.lowMB !== undefined;
    if (free < min || (wasLow && free < min * 1.1)) {
      this.lowMB = free;
      if (!wasLow) {
        this.ctx.log.warn({ freeMB: free, minFreeMB: min }, 'dataDir is almost full');
        await this.ctx.onLow(free, min).catch(() => undefined);
      }
    } else {
      this.lowMB = undefined;
    }
  }

  private arm(): void {
    if (this.stopped) return;
    this.timer = this.ctx.clock.setTimer(CHECK_MS, () => void this.check().finally(() => this.arm()));
  }
}
