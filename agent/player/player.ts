import type { Clip } from '../core/clip.js';
import type { EpochMs, Outcome } from '../core/types.js';
import type { Picture } from './picture.js';

export interface SpotRequest {
  /** Opaque id chosen by the engine; echoed in callbacks. */
  playId: string;
  campaignId: string;
  clip: Clip;
}

export interface SpotHandlers {
  /** Playback really started (mpv `playback-restart` of this file), at wall-clock `at`. */
  onStarted(at: EpochMs): void;
  /** The spot is over. Called exactly once per accepted spot, even if the player dies. */
  onEnded(at: EpochMs, outcome: Outcome, detail?: string): void;
}

export type PlayerStateName = 'playing' | 'idle' | 'down';

export interface PlayerState {
  state: PlayerStateName;
  campaignId?: string;
  url?: string;
  hwdec?: string;
}

export interface PlayerEvents {
  /** The player process was restarted (crash, stall, or on request). */
  onRestarted?(reason: string): void;
  /** Evidence-of-display heuristics saw a black or frozen frame during a spot. */
  onOutputSuspect?(detail: Record<string, unknown>): void;
}

/**
 * What the engine needs from a screen. Implementations: MpvPlayer (real mpv over JSON IPC)
 * and SimulatedPlayer (virtual time, for `simulate` and unit tests).
 *
 * Invariants: at most one spot plays at a time; `playSpot` while a spot plays is an error
 * (the engine queues); a spot is never cut short by the loop; when no spot plays the loop
 * clips play in order, repeating, or the screen is black when the loop is empty.
 */
export interface Player {
  start(): Promise<void>;
  stop(): Promise<void>;
  setLoop(clips: Clip[]): void;
  /**
   * Starts the spot now, the loop clip giving way. Rejects, without calling `handlers`, only when
   * the player is down or a spot is already playing. Otherwise the spot is accepted and
   * `onEnded` follows exactly once; the promise resolves once the player answered the load (or
   * gave up waiting for the answer), whatever the answer: a refused file, or a player that died
   * meanwhile, ends the spot through `onEnded` (`failed` / `interrupted`), never through a rejection.
   */
  playSpot(req: SpotRequest, handlers: SpotHandlers): Promise<void>;
  /**
   * Optional: ends the spot in the player at once as `interrupted` (its `onEnded` runs now), for
   * an emergency alert (§10) that preempts it. No spot: nothing happens.
   */
  interrupt?(reason: string): void;
  /** Optional: load the spot's file ahead of its instant so it starts on time. */
  preload?(clip: Clip): Promise<void>;
  busy(): boolean;
  state(): PlayerState;
  screenshot(): Promise<Buffer>;
  restart(reason: string): Promise<void>;
  /** Optional (§11): blank the output and set its level; kept across the player's own restarts. */
  setPicture?(p: Picture): Promise<void>;
}
