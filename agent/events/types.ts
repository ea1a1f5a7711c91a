import type { DesiredKind, SourceKey } from '../core/desired.js';
import type { DisplayPower } from '../protocol/outbound.js';
import type { StoreReplacement } from '../store/recovery.js';

// Every `event` message the agent publishes (PROTOCOL §3 `{"ts","type","detail"}`), by type,
// with the detail as published. A new type is added here first, so the NOC's list is this map.

export interface EventDetails {
  /**
   * A desired-state document was stored (or an override cleared: `cleared: true`), or a key set
   * (`kind: 'keys'`, `source: 'fleet'`). `keyId`: the key that signed it, in signed mode.
   */
  applied: { topic: string; kind: DesiredKind | 'keys'; source: SourceKey; version: number; cleared?: true; keyId?: string };
  /** An inbound message refused; later ones within the minute are folded into `count`/`dropped`. */
  rejected: { topic: string; reason: string; count?: number; dropped?: number };
  'media-failed': { url: string; sha256: string; reason: string };
  'player-restarted': { reason: string };
  /** The player's evidence that the picture may not be on the screen. */
  'output-suspect': Record<string, unknown>;
  'clock-jump': { from: string; to: string; deltaMs: number };
  'store-replaced': StoreReplacement & { storeId: string; countsReset: true; note: string };
  'outbox-dropped': { count: number; max: number };
  'subscribe-refused': { topics: Array<{ topic: string; code: number }> };
  /** Recorded by the store itself (it sits below this component): listed for the NOC's sake. */
  'store-recovered': Record<string, unknown>;
  'disk-low': { freeMB: number; minFreeMB: number };
  /**
   * An `update` (issue 13) that did not happen: refused before the switch (stage download, verify,
   * unpack, switch: nothing changed), or rolled back by the health gate (stage health, recorded by
   * the release that is back). `version`: the release that failed.
   */
  'update-failed': { version: string; runningVersion: string; stage: string; reason: string; rolledBackAt?: string };
  /** A new release proved itself healthy after an update. */
  updated: { from: string; to: string };
  /**
   * §11: the screen's power or brightness changed. `reason`: `schedule` (a boundary, a new
   * schedule, a restart), `alert` (woken for an alert), `cec-failed` (the sink did not take the
   * CEC command: the output is black instead). `via`: how standby is shown; `cec`: what the sink said.
   */
  display: { power: DisplayPower; brightnessPct: number | null; reason: 'schedule' | 'alert' | 'cec-failed'; via?: 'cec' | 'black'; cec?: string };
  /**
   * §10: the alert on screen changed. `started` when one takes the screen (at its startsAt, or
   * on arrival when already live), `ended` when it leaves it: `expired`, `cleared`, `replaced`
   * (a new version), or `superseded` (a newer startsAt took over; it comes back if it outlives that one).
   */
  alert: { id: string; source: SourceKey; version: number; state: 'started' | 'ended'; reason?: 'expired' | 'cleared' | 'replaced' | 'superseded'; startsAt?: string; expiresAt?: string; at: string };
}

export type EventType = keyof EventDetails;
