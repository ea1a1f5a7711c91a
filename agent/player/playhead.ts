import type { Clock } from '../core/clock.js';

/**
 * What mpv reports about playback besides its playlist: the playhead, the two ways it pauses
 * (asked to, or waiting for data) and the decoder in use. The supervisor's stall check reads it.
 */
export class MpvPlayhead {
  timePos: number | undefined;
  /** The last decoder mpv named; reset() leaves it, as the player always has, until the new mpv names one. */
  hwdec: string | undefined;
  private paused = { pause: false, cache: false };
  private movedAt = 0;
  /** time-pos changes seen since this mpv came up: frames going by (a new picture reaches the screen with them). */
  steps = 0;

  constructor(private readonly clock: Clock) {}

  /** A new mpv: not paused, no position yet. */
  reset(): void {
    this.paused = { pause: false, cache: false };
    this.timePos = undefined;
  }

  /** Counts as movement without a time-pos change: mpv came up, started a file or showed a frame. */
  moved(): void {
    this.movedAt = this.clock.monotonic();
  }

  onProperty(name: string, data: unknown): void {
    switch (name) {
      case 'time-pos':
        if (typeof data === 'number' && data !== this.timePos) {
          this.moved();
          this.steps++;
        }
        this.timePos = typeof data === 'number' ? data : undefined;
        break;
      case 'hwdec-current':
        if (typeof data === 'string') this.hwdec = data;
        break;
      case 'pause':
        this.paused.pause = data === true;
        break;
      case 'paused-for-cache':
        this.paused.cache = data === true;
        break;
    }
  }

  /** When the playhead last moved, or undefined while mpv is paused or buffering (not moving is then no stall). */
  lastMoveUnpaused(): number | undefined {
    return this.paused.pause || this.paused.cache ? undefined : this.movedAt;
  }
}
