import type { Clock, TimerHandle } from '../core/clock.js';
import type { Outcome } from '../core/types.js';
import type { Clip } from '../core/clip.js';
import type { Picture } from './picture.js';
import type { Player, PlayerEvents, PlayerState, SpotHandlers, SpotRequest } from './player.js';

export interface SimulatedPlayerContext {
  clock: Clock;
  /** Length of a clip without durationMs (spots and loop clips). Default 30 s. */
  defaultDurationMs?: number;
  /** From playSpot to the spot's first frame. Default 0. */
  startLatencyMs?: number;
  /** A spot this answers true for fails to load, as a broken file does in mpv. */
  fail?: (req: SpotRequest) => boolean;
  events?: PlayerEvents;
}

/**
 * Where the loop stands (in monotonic time: a wall-clock step does not move mpv's playhead), kept as arithmetic instead of one timer per clip: `simulate` runs weeks
 * of virtual time and the loop must not cost a timer (and a settle) every 30 s of it.
 * clips[first] starts at `startAt` and the clips follow in order, repeating; `tail` is a clip of
 * a replaced loop playing out first (mpv never cuts a loop clip for a new loop).
 */
interface LoopPlan {
  clips: Clip[];
  first: number;
  startAt: number;
  tail?: { clip: Clip; endsAt: number };
}

interface Spot {
  req: SpotRequest;
  handlers: SpotHandlers;
  timers: TimerHandle[];
  /** The loop clip to resume with once the spot is over (mpv queues it behind the spot). */
  resume: number;
}

/**
 * A player in virtual time for `simulate` and the engine's unit tests, held to MpvPlayer's
 * behaviour by the Player contract suite (test/player-contract.test.ts): a spot starts
 * `startLatencyMs` after it is asked for, lasts its clip's durationMs, and the loop gives way to
 * it and resumes with the next clip afterwards. No process, no files, no frames.
 */
export class SimulatedPlayer implements Player {
  private loop: LoopPlan = { clips: [], first: 0, startAt: 0 };
  private spot: Spot | undefined;
  private up = false;
  private stopped = false;
  /** Every spot request, for tests. */
  readonly history: Array<{ campaignId: string; requestedAt: number }> = [];
  /** The last picture set (§11), for tests and `simulate`. */
  picture: Picture | undefined;

  constructor(private readonly ctx: SimulatedPlayerContext) {}

  async start(): Promise<void> {
    this.up = true;
    this.stopped = false;
    this.loop = { clips: this.loop.clips, first: 0, startAt: this.ctx.clock.monotonic() };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.endSpot('interrupted', 'player stopped');
    this.up = false;
  }

  /** A power cut: the process vanishes without telling anyone. */
  kill(): void {
    this.up = false;
    for (const t of this.spot?.timers ?? []) t.cancel();
    this.spot = undefined;
  }

  setLoop(clips: Clip[]): void {
    const now = this.ctx.clock.monotonic();
    const playing = this.spot ? undefined : this.loopAt(now);
    // As mpv: whatever plays finishes (a spot is never cut, a loop clip plays out); the new loop follows.
    const next: LoopPlan = { clips: [...clips], first: 0, startAt: playing?.endsAt ?? now };
    if (playing) next.tail = { clip: playing.clip, endsAt: playing.endsAt };
    this.loop = next;
    if (this.spot) this.spot.resume = 0;
  }

  async playSpot(req: SpotRequest, handlers: SpotHandlers): Promise<void> {
    if (!this.up) throw new Error('player is down');
    if (this.spot) throw new Error(`a spot is playing (${this.spot.req.playId})`);
    this.history.push({ campaignId: req.campaignId, requestedAt: this.ctx.clock.now() });
    const spot: Spot = { req, handlers, timers: [], resume: this.nextLoopIndex(this.ctx.clock.monotonic()) };
    this.spot = spot;
    const latency = this.ctx.startLatencyMs ?? 0;
    if (this.ctx.fail?.(req) ?? false) {
      spot.timers.push(this.ctx.clock.setTimer(latency, () => this.endSpot('failed', `cannot play ${req.clip.path}`)));
      return;
    }
    spot.timers.push(
      this.ctx.clock.setTimer(latency, () => {
        spot.timers.push(this.ctx.clock.setTimer(this.lengthOf(req.clip), () => this.endSpot('completed')));
        handlers.onStarted(this.ctx.clock.now());
      }),
    );
  }

  async setPicture(p: Picture): Promise<void> {
    this.picture = { ...p };
  }

  /** As MpvPlayer: the spot ends now as interrupted. */
  interrupt(reason: string): void {
    this.endSpot('interrupted', reason);
  }

  busy(): boolean {
    return this.spot !== undefined;
  }

  state(): PlayerState {
    if (!this.up) return { state: 'down' };
    if (this.spot) return { state: 'playing', campaignId: this.spot.req.campaignId, url: this.spot.req.clip.path };
    const playing = this.loopAt(this.ctx.clock.monotonic());
    return playing ? { state: 'playing', url: playing.clip.path } : { state: 'idle' };
  }

  /** Rejects as MpvPlayer does when down or black; when a clip plays there is still no frame to give. */
  async screenshot(): Promise<Buffer> {
    const s = this.state();
    if (s.state === 'down') throw new Error('player is down: no frame to capture');
    if (s.state === 'idle') throw new Error('nothing is playing (the screen is black): no frame to capture');
    throw new Error('the simulated player has no frames');
  }

  async restart(reason: string): Promise<void> {
    if (this.stopped) throw new Error('player is stopped');
    const resume = this.spot?.resume ?? this.nextLoopIndex(this.ctx.clock.monotonic());
    this.endSpot('interrupted', reason);
    this.up = true;
    this.loop = { clips: this.loop.clips, first: resume, startAt: this.ctx.clock.monotonic() };
    this.ctx.events?.onRestarted?.(reason);
  }

  private endSpot(outcome: Outcome, detail?: string): void {
    const s = this.spot;
    if (!s) return;
    for (const t of s.timers) t.cancel();
    this.spot = undefined;
    this.loop = { clips: this.loop.clips, first: s.resume, startAt: this.ctx.clock.monotonic() };
    s.handlers.onEnded(this.ctx.clock.now(), outcome, detail);
  }

  private lengthOf(clip: Clip): number {
    return Math.max(1, clip.durationMs ?? this.ctx.defaultDurationMs ?? 30_000);
  }

  /** The loop clip mpv would start next: the one after the clip on screen (mpv sets it at each start-file). */
  private nextLoopIndex(at: number): number {
    const playing = this.loopAt(at);
    return playing && !playing.tail ? playing.index + 1 : this.loop.first;
  }

  /** The loop clip on screen at `at` (no spot playing), with its index and end; undefined when black. */
  private loopAt(at: number): { clip: Clip; index: number; endsAt: number; tail?: true } | undefined {
    const { clips, first, startAt, tail } = this.loop;
    if (tail && at < tail.endsAt) return { clip: tail.clip, index: -1, endsAt: tail.endsAt, tail: true };
    if (clips.length === 0 || at < startAt) return undefined;
    const cycle = clips.reduce((sum, c) => sum + this.lengthOf(c), 0);
    let t = startAt + Math.floor((at - startAt) / cycle) * cycle;
    for (let k = 0; ; k++) {
      const index = (first + k) % clips.length;
      const clip = clips[index]!;
      const endsAt = t + this.lengthOf(clip);
      if (at < endsAt) return { clip, index, endsAt };
      t = endsAt;
    }
  }
}
