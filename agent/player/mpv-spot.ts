import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import type { Outcome } from '../core/types.js';
import { SpotEvidence, type SuspectDetail } from './evidence.js';
import { guarded } from './guarded.js';
import type { SpotHandlers, SpotRequest } from './player.js';

/** What every spot of one MpvPlayer shares. */
export interface SpotRunContext {
  clock: Clock;
  log: Logger;
  /** A spot with no first frame this long after its loadfile is `failed`. */
  loadTimeoutMs: number;
  /** Frame sampling while the spot shows, or `false`. */
  evidence: { intervalMs: number } | false;
  capture(): Promise<Buffer>;
  timePos(): number | undefined;
  onSuspect(detail: SuspectDetail): void;
  /** The spot timed out without a frame: mpv must be moved on from it. */
  onLoadTimeout(): void;
  /** The spot is over, just before its `onEnded` runs (which may already ask for the next spot). */
  onOver(run: SpotRun): void;
}

/**
 * One accepted spot, from loadfile to its end: the load deadline, the first frame, evidence
 * sampling while it shows, and `onEnded` exactly once whichever way it ends.
 */
export class SpotRun {
  started = false;
  ended = false;
  private loadTimer: TimerHandle | undefined;
  private evidence: SpotEvidence | undefined;

  constructor(
    readonly req: SpotRequest,
    private readonly handlers: SpotHandlers,
    private readonly ctx: SpotRunContext,
  ) {}

  /** Starts the load deadline; call once the loadfile is sent. */
  armLoadTimer(): void {
    const ms = this.ctx.loadTimeoutMs;
    this.loadTimer = this.ctx.clock.setTimer(ms, () => {
      if (this.started || this.ended) return;
      this.finish('failed', `no playback ${ms} ms after loadfile`);
      this.ctx.onLoadTimeout();
    });
  }

  /** mpv showed the spot's first frame. */
  onFirstFrame(): void {
    if (this.started) return;
    this.started = true;
    this.loadTimer?.cancel();
    guarded(this.ctx.log, () => this.handlers.onStarted(this.ctx.clock.now()));
    const ev = this.ctx.evidence;
    if (!ev || this.ended) return;
    this.evidence = new SpotEvidence(
      {
        clock: this.ctx.clock,
        intervalMs: ev.intervalMs,
        capture: () => this.ctx.capture(),
        timePos: () => this.ctx.timePos(),
        onSuspect: (d) => this.ctx.onSuspect(d),
        onError: (err) => this.ctx.log.debug({ err: err.message }, 'evidence sample failed'),
      },
      { playId: this.req.playId, campaignId: this.req.campaignId },
    );
    this.evidence.start();
  }

  finish(outcome: Outcome, detail?: string): void {
    if (this.ended) return;
    this.ended = true;
    this.loadTimer?.cancel();
    this.evidence?.stop();
    this.ctx.onOver(this);
    guarded(this.ctx.log, () => this.handlers.onEnded(this.ctx.clock.now(), outcome, detail));
  }
}
