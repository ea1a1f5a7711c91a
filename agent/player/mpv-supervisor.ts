import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import type { MpvIpc } from './mpv-ipc.js';

export interface SupervisorTimings {
  /** time-pos frozen this long while a file plays unpaused = stalled. */
  stallMs: number;
  /** Liveness probe period and its answer deadline. */
  pingIntervalMs: number;
  pingTimeoutMs: number;
  /** Restart backoff: first delay, cap, and how long mpv must run healthy to reset it. */
  backoffMinMs: number;
  backoffMaxMs: number;
  healthyResetMs: number;
}

/** What the supervisor needs from the player it watches. */
export interface SupervisedMpv {
  /** The running, ready mpv, or undefined while down. */
  live(): MpvIpc | undefined;
  /** Monotonic ms of the playhead's last move while a file plays unpaused; undefined when nothing should move. */
  playheadMovedAt(): number | undefined;
  /** Kills mpv and ends what it was playing as interrupted; resolves once the process is gone. */
  takeDown(reason: string): Promise<void>;
  /** Spawns a new mpv and resumes playback; rejects if it does not come up. */
  bringUp(): Promise<void>;
  onRestarted(reason: string): void;
}

export interface SupervisorContext {
  clock: Clock;
  log: Logger;
  timings: SupervisorTimings;
  mpv: SupervisedMpv;
}

/**
 * Keeps one mpv alive: notices it dead (the player calls `fail` on exit), stalled or not
 * answering, and restarts it with capped exponential backoff so a box with a broken mpv or
 * display neither spins nor gives up.
 */
export class MpvSupervisor {
  private stopped = true;
  private tickTimer: TimerHandle | undefined;
  private respawnTimer: TimerHandle | undefined;
  private failures = 0;
  private upSince = 0;
  private lastPing = 0;
  private pinging = false;

  constructor(private readonly ctx: SupervisorContext) {}

  start(): void {
    this.stopped = false;
    this.tick();
  }

  stop(): void {
    this.stopped = true;
    this.tickTimer?.cancel();
    this.respawnTimer?.cancel();
    this.respawnTimer = undefined;
  }

  /** A new mpv is up and playing. */
  markUp(): void {
    this.upSince = this.ctx.clock.monotonic();
    this.pinging = false;
  }

  /** mpv failed: take it down now, bring a new one up after the backoff delay. */
  fail(reason: string): void {
    if (this.stopped || this.respawnTimer) return;
    const { timings: t, clock } = this.ctx;
    this.ctx.log.warn({ reason }, 'mpv failed: restarting');
    const ranHealthy = this.ctx.mpv.live() !== undefined && clock.monotonic() - this.upSince >= t.healthyResetMs;
    const gone = this.ctx.mpv.takeDown(reason);
    this.failures = ranHealthy ? 1 : this.failures + 1;
    const delay = Math.min(t.backoffMaxMs, t.backoffMinMs * 2 ** (this.failures - 1));
    this.respawnTimer = clock.setTimer(delay, () => {
      this.respawnTimer = undefined;
      void gone
        .then(() => this.ctx.mpv.bringUp())
        .then(
          () => this.ctx.mpv.onRestarted(reason),
          (e: Error) => this.fail(`restart failed: ${e.message}`),
        );
    });
  }

  /** Restart on request: no backoff. */
  async restartNow(reason: string): Promise<void> {
    this.respawnTimer?.cancel();
    this.respawnTimer = undefined;
    await this.ctx.mpv.takeDown(reason);
    try {
      await this.ctx.mpv.bringUp();
    } catch (e) {
      this.fail(`restart failed: ${(e as Error).message}`);
      throw e;
    }
    this.ctx.mpv.onRestarted(reason);
  }

  private tick(): void {
    if (this.stopped) return;
    const { timings: t, clock } = this.ctx;
    const now = clock.monotonic();
    const ipc = this.ctx.mpv.live();
    const moved = this.ctx.mpv.playheadMovedAt();
    if (ipc && moved !== undefined && now - moved > t.stallMs) {
      this.fail(`stalled: playhead frozen for ${Math.round(now - moved)} ms`);
    } else if (ipc && !this.pinging && now - this.lastPing >= t.pingIntervalMs) {
      this.pinging = true;
      this.lastPing = now;
      ipc.command(['get_property', 'pid'], { timeoutMs: t.pingTimeoutMs }).then(
        () => ipc === this.ctx.mpv.live() && (this.pinging = false),
        (e: Error) => ipc === this.ctx.mpv.live() && this.fail(`not answering: ${e.message}`),
      );
    }
    this.tickTimer = clock.setTimer(Math.min(500, t.stallMs / 2), () => this.tick());
  }
}
