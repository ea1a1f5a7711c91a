import type { EpochMs } from '../core/types.js';

// Two small pieces of the engine's state with rules of their own.

/** Wall clock moving this much more (or less) than monotonic time between wakes is a jump. */
const JUMP_THRESHOLD_MS = 2_000;

export interface ClockJump {
  /** Where the wall clock should have been. */
  expected: EpochMs;
  deltaMs: number;
}

/** Notices wall-clock steps (NTP after a boot without RTC) by comparing with monotonic time. */
export class ClockJumpDetector {
  private last: { wall: EpochMs; mono: number } | undefined;

  /** The jump since the previous observation, if the wall clock stepped. */
  observe(wall: EpochMs, mono: number): ClockJump | undefined {
    const last = this.last;
    this.last = { wall, mono };
    if (!last) return undefined;
    const expected = last.wall + (mono - last.mono);
    const deltaMs = wall - expected;
    return Math.abs(deltaMs) < JUMP_THRESHOLD_MS ? undefined : { expected, deltaMs };
  }
}

/** After a failed play the campaign rests this long, doubling per failure up to the cap. */
const REST_BASE_MS = 30_000;
const REST_MAX_MS = 15 * 60_000;

/**
 * Campaigns resting after failed plays, so a broken file is never retried in a tight loop
 * (a failure takes milliseconds, and the catch-up rule would otherwise plan the next try
 * sooner and sooner). A completed play ends the rest and resets the backoff.
 * Instants are monotonic milliseconds (Clock.monotonic()): a rest kept in wall time would
 * last an extra hour after NTP stepped the clock back an hour.
 */
export class FailureRests {
  private readonly rests = new Map<string, { until: number; failures: number }>();

  failed(campaignId: string, at: number): void {
    const failures = (this.rests.get(campaignId)?.failures ?? 0) + 1;
    this.rests.set(campaignId, { until: at + Math.min(REST_MAX_MS, REST_BASE_MS * 2 ** (failures - 1)), failures });
  }

  completed(campaignId: string): void {
    this.rests.delete(campaignId);
  }

  /** When the campaign may play again, if it is resting at `now`. */
  restingUntil(campaignId: string, now: number): number | undefined {
    const r = this.rests.get(campaignId);
    return r && r.until > now ? r.until : undefined;
  }
}
