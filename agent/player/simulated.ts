import type { Clock, TimerHandle } from '../core/clock.js';
import type { Clip, Player, PlayerState, SpotHandlers, SpotRequest } from './player.js';

/**
 * A player in virtual time for `simulate` and the engine's unit tests: a spot starts
 * `startLatencyMs` after it is asked for and lasts its clip's durationMs. No process, no files.
 */
export class SimulatedPlayer implements Player {
  private loop: Clip[] = [];
  private spot: { req: SpotRequest; handlers: SpotHandlers; timers: TimerHandle[] } | undefined;
  private up = false;
  /** Every spot request, for tests. */
  readonly history: Array<{ campaignId: string; requestedAt: number }> = [];

  constructor(private readonly ctx: { clock: Clock; defaultDurationMs?: number; startLatencyMs?: number; fail?: (req: SpotRequest) => boolean }) {}

  async start(): Promise<void> {
    this.up = true;
  }

  async stop(): Promise<void> {
    this.up = false;
    this.endSpot('interrupted');
  }

  /** A power cut: the process vanishes without telling anyone. */
  kill(): void {
    this.up = false;
    for (const t of this.spot?.timers ?? []) t.cancel();
    this.spot = undefined;
  }

  setLoop(clips: Clip[]): void {
    this.loop = clips;
  }

  async playSpot(req: SpotRequest, handlers: SpotHandlers): Promise<void> {
    if (!this.up) throw new Error('player is down');
    if (this.spot) throw new Error('a spot is already playing');
    this.history.push({ campaignId: req.campaignId, requestedAt: this.ctx.clock.now() });
    const latency = this.ctx.startLatencyMs ?? 0;
    const length = req.clip.durationMs ?? this.ctx.defaultDurationMs ?? 30_000;
    const failed = this.ctx.fail?.(req) ?? false;
    const spot: { req: SpotRequest; handlers: SpotHandlers; timers: TimerHandle[] } = { req, handlers, timers: [] };
    this.spot = spot;
    if (failed) {
      spot.timers.push(this.ctx.clock.setTimer(latency, () => this.endSpot('failed')));
      return;
    }
    spot.timers.push(
      this.ctx.clock.setTimer(latency, () => {
        handlers.onStarted(this.ctx.clock.now());
        spot.timers.push(this.ctx.clock.setTimer(length, () => this.endSpot('completed')));
      }),
    );
  }

  busy(): boolean {
    return this.spot !== undefined;
  }

  state(): PlayerState {
    if (!this.up) return { state: 'down' };
    if (this.spot) return { state: 'playing', campaignId: this.spot.req.campaignId, url: this.spot.req.clip.path };
    return this.loop.length > 0 ? { state: 'playing', url: this.loop[0]?.path } : { state: 'idle' };
  }

  async screenshot(): Promise<Buffer> {
    throw new Error('the simulated player has no frames');
  }

  async restart(): Promise<void> {
    this.endSpot('interrupted');
  }

  private endSpot(outcome: 'completed' | 'interrupted' | 'failed'): void {
    const s = this.spot;
    if (!s) return;
    for (const t of s.timers) t.cancel();
    this.spot = undefined;
    s.handlers.onEnded(this.ctx.clock.now(), outcome);
  }
}
