// Domain types shared by every subsystem. The documents on the wire are defined once, as zod
// schemas in agent/protocol/ (PROTOCOL.md §4–§8), and their types are inferred there; this file
// re-exports them beside the few types that are not wire documents. Field names are the wire
// names, so decoders and encoders need no renaming.

export type { Alert, AlertDoc, Assignment, Campaign, CampaignOverride, MediaRef, Override } from '../protocol/schemas.js';
export type { AgentEvent, Compliance, DisplayState, Outcome, PlayEvent } from '../protocol/outbound.js';

/** Epoch milliseconds (UTC). All instants inside the agent are this; local time exists only at the edges. */
export type EpochMs = number;
/** A local calendar date `YYYY-MM-DD` in the configured timezone. */
export type LocalDate = string;
