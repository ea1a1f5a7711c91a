import type { MediaRef } from '../core/types.js';
import type { Clip } from '../core/clip.js';

/**
 * Which house-loop clips to show (PROTOCOL v1.1 §4): a new `loop` replaces the one on screen
 * only once every one of its clips is verified, so a slow or failed download (a 404) never
 * blanks a screen that had content. Until then the old loop plays (what of it is still
 * playable); with no old loop to fall back on, whatever of the new one is ready plays.
 */
export class LoopSelection {
  private shown: readonly MediaRef[] = [];

  constructor(private readonly resolve: (m: MediaRef) => Clip | undefined) {}

  /** The clips to loop now, for the loop the desired state names. */
  clips(desired: readonly MediaRef[]): Clip[] {
    const next = desired.map((m) => this.resolve(m));
    const ready = next.filter((c): c is Clip => c !== undefined);
    if (ready.length === next.length) {
      this.shown = desired;
      return ready;
    }
    const old = this.shown.map((m) => this.resolve(m)).filter((c): c is Clip => c !== undefined);
    return old.length > 0 ? old : ready;
  }

  /** The loop last shown in full: its media stays pinned in the cache while it is on screen. */
  onScreen(): readonly MediaRef[] {
    return this.shown;
  }
}
