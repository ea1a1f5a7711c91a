import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import { LEVELS, type LevelName } from './ring.js';

// The `log-level` command (issue 13 item 5): debug on one screen from the NOC, for a while. A
// forgotten debug level turns itself off: every change has an expiry (default 30 min, at most
// 24 h) after which the level the agent started with comes back. pino 10's child loggers follow
// their parent's level unless given their own (none is here), so setting the root's level
// reaches every component's logger, and both destinations (stdout and the ring) see the same.

export const DEFAULT_LEVEL_SEC = 30 * 60;
export const MAX_LEVEL_SEC = 24 * 3600;

export interface LevelState {
  level: LevelName;
  /** The level the agent runs at without a change in force. */
  base: LevelName;
  /** When a change in force reverts to `base` (ISO); absent when none is. */
  expiresAt?: string;
}

export interface LogLevelContext {
  /** The root logger: its level is the one changed. */
  logger: Logger;
  clock: Clock;
  /** Where the control says what it did (a child of `logger`). */
  log: Logger;
}

export class LogLevelControl {
  readonly base: LevelName;
  private timer: TimerHandle | undefined;
  private expiresAt: number | undefined;

  constructor(private readonly ctx: LogLevelContext) {
    const l = ctx.logger.level;
    this.base = Object.hasOwn(LEVELS, l) ? (l as LevelName) : 'info';
  }

  async start(): Promise<void> {}

  /** Back to the base level: a change is not carried past the agent's own stop. */
  async stop(): Promise<void> {
    this.revert('stop');
  }

  state(): LevelState {
    const level = this.ctx.logger.level as LevelName;
    return this.expiresAt === undefined ? { level, base: this.base } : { level, base: this.base, expiresAt: new Date(this.expiresAt).toISOString() };
  }

  /** Sets `level` until `seconds` from now (the base level itself: the change ends now). */
  set(level: LevelName, seconds = DEFAULT_LEVEL_SEC): LevelState {
    if (!(seconds > 0 && seconds <= MAX_LEVEL_SEC)) throw new RangeError(`expiresInSec must be in (0, ${MAX_LEVEL_SEC}]`);
    this.timer?.cancel();
    this.timer = undefined;
    this.expiresAt = undefined;
    const from = this.ctx.logger.level;
    this.ctx.logger.level = level;
    if (level !== this.base) {
      this.expiresAt = this.ctx.clock.now() + seconds * 1000;
      this.timer = this.ctx.clock.setTimer(seconds * 1000, () => this.revert('expired'));
    }
    // Said at warn so it is in the log whatever the level was or becomes.
    this.ctx.log.warn({ from, to: level, ...(this.expiresAt ? { until: new Date(this.expiresAt).toISOString() } : {}) }, 'log level changed');
    return this.state();
  }

  private revert(why: 'expired' | 'stop'): void {
    this.timer?.cancel();
    this.timer = undefined;
    if (this.expiresAt === undefined) return;
    this.expiresAt = undefined;
    const from = this.ctx.logger.level;
    this.ctx.logger.level = this.base;
    this.ctx.log.warn({ from, to: this.base, why }, 'log level reverted');
  }
}
