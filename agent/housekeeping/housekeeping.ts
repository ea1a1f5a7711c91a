import schedule from 'node-schedule';
import type { Logger } from '../core/log.js';
import type { Clock } from '../core/clock.js';
import { addDays, Zone } from '../schedule/zoned.js';
import type { Store } from '../store/store.js';

export interface HousekeepingContext {
  store: Store;
  clock: Clock;
  log: Logger;
  timezone: string;
  /** Local days of play history kept on the box (proof for audits that ask the box itself). */
  keepDays: number;
  /** cron rule in the screen's timezone; default 03:17, off-peak and off the hour. */
  rule?: string;
}

/**
 * Nightly upkeep on node-schedule (a wall-clock, timezone-aware cron): prune play history older
 * than `keepDays` and fold the WAL into the database. The engine does not use it: play instants
 * run on the injectable Clock so `simulate` can replay days in milliseconds.
 */
export class Housekeeping {
  private job: schedule.Job | undefined;
  private readonly zone: Zone;

  constructor(private readonly ctx: HousekeepingContext) {
    this.zone = new Zone(ctx.timezone);
  }

  async start(): Promise<void> {
    this.job = schedule.scheduleJob({ rule: this.ctx.rule ?? '17 3 * * *', tz: this.ctx.timezone }, () => void this.run());
  }

  async stop(): Promise<void> {
    this.job?.cancel();
    this.job = undefined;
  }

  /** The next run, for status and tests. */
  nextRun(): Date | undefined {
    return this.job?.nextInvocation() ?? undefined;
  }

  async run(): Promise<{ pruned: number }> {
    try {
      const before = addDays(this.zone.localDateOf(this.ctx.clock.now()), -this.ctx.keepDays);
      const pruned = await this.ctx.store.prunePlays(before);
      await this.ctx.store.checkpoint();
      this.ctx.log.info({ pruned, before }, 'housekeeping done');
      return { pruned };
    } catch (err) {
      this.ctx.log.error({ err }, 'housekeeping failed');
      return { pruned: 0 };
    }
  }
}
