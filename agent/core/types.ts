// Domain types shared by every subsystem. These mirror ../shared/PROTOCOL.md §4–§8;
// field names here are the wire names, so decoders and encoders need no renaming.

/** Epoch milliseconds (UTC). All instants inside the agent are this; local time exists only at the edges. */
export type EpochMs = number;
/** A local calendar date `YYYY-MM-DD` in the configured timezone. */
export type LocalDate = string;

export interface MediaRef {
  url: string;
  sha256: string;
  durationMs?: number;
}

export interface Campaign {
  id: string;
  media: MediaRef;
  startDate?: LocalDate;
  endDate?: LocalDate;
  timesPerDay: number;
  /** `HH:MM[:SS]-HH:MM[:SS]` local; omitted = whole day. */
  windows?: string[];
  /** ISO weekdays 1 = Monday … 7 = Sunday; omitted = every day. */
  weekdays?: number[];
  priority?: number;
}

export interface Assignment {
  version: number;
  campaigns: Campaign[];
  loop?: MediaRef[];
  /** §9: the signed document names its target; optional in plain mode. */
  target?: string;
}

export interface CampaignOverride {
  timesPerDay?: number;
  windows?: string[];
}

export interface Override {
  version: number;
  campaigns: Record<string, CampaignOverride>;
  /** ISO-8601 instant; omitted = until cleared. */
  expiresAt?: string;
  target?: string;
}

export type Outcome = 'completed' | 'interrupted' | 'failed';
export type DisplayState = 'connected' | 'disconnected' | 'unknown';

/** PROTOCOL §8 play event, exactly as published. */
export interface PlayEvent {
  eventId: string;
  seq: number;
  /** PROTOCOL v1.1 §8: the store that numbered `seq`; eventId is `{deviceId}:{storeId}:{seq}`. */
  storeId: string;
  deviceId: string;
  campaignId: string;
  mediaSha256: string;
  day: LocalDate;
  scheduledAt: string;
  startedAt: string;
  endedAt: string;
  durationMs: number;
  outcome: Outcome;
  inWindow: boolean;
  played: number;
  target: number;
  display: DisplayState;
  clockSynced: boolean;
}

/** PROTOCOL §3 `event` message. */
export interface AgentEvent {
  ts: string;
  type: string;
  detail: unknown;
}

export interface Compliance {
  campaignId: string;
  day: LocalDate;
  played: number;
  target: number;
  onTrack: boolean;
}
