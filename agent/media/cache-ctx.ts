import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import type { MediaRef } from '../core/types.js';
import type { Lookup, SourcePolicy } from './sources.js';

export interface MediaCacheEvents {
  /** A file was downloaded and its sha256 checked: re-plan, campaigns using it can play now. */
  onVerified?(sha256: string): void;
  /** An attempt failed (reported once per distinct reason, not on every retry): the `media-failed` event. */
  onFailed?(ref: MediaRef, reason: string): void;
}

export interface MediaCacheCtx {
  dir: string;
  maxBytes: number;
  clock: Clock;
  log: Logger;
  events?: MediaCacheEvents;
  fetchImpl?: typeof fetch;
  /** Where media may come from (config media.fileRoots, media.allowHosts): required, no open default. */
  sources: SourcePolicy;
  /** DNS for the source check (tests). */
  lookup?: Lookup;
  /** Free space a download may not eat into (config media.minFreeMB; default none). */
  minFreeBytes?: number;
  /** Parallel downloads (default 2: a Pi's SD card and uplink gain nothing from more). */
  concurrency?: number;
  /** mpv used to probe each verified file's length (default `mpv`). */
  mpvPath?: string;
  probeTimeoutMs?: number;
  /** One cached file re-hashed per period after the start-up sweep (default 5 min). */
  recheckEveryMs?: number;
}
