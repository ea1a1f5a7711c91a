import { z } from 'zod';

// Wire schemas of what the agent publishes (PROTOCOL §3, §7, §8), and the builders that give each
// message its fields in the published order. The types are inferred from the schemas, so a field
// is named once; the NOC, signagectl and the tests decode with the same schemas.
//
// Field order is part of the contract in practice: the NOC and the proof-of-play tests compare
// play events byte for byte, so each shape's keys are declared in the order they are published.

const isoInstant = z.iso.datetime({ offset: true });
const count = z.number().int().nonnegative();

export const outcomeSchema = z.enum(['completed', 'interrupted', 'failed']);
export type Outcome = z.infer<typeof outcomeSchema>;

/** The HDMI connector's state (evidence of display). */
export const displayStateSchema = z.enum(['connected', 'disconnected', 'unknown']);
export type DisplayState = z.infer<typeof displayStateSchema>;

/** §11 (v1.1): the screen's power as the display schedule and HDMI-CEC left it. */
export const displayPowerSchema = z.enum(['on', 'standby', 'unknown']);
export type DisplayPower = z.infer<typeof displayPowerSchema>;

/**
 * The heartbeat's `display` (§11): power and brightness, and `hdmi`, the connector's state that
 * heartbeats before v1.1 sent as `display` itself (a string), which a reader still accepts.
 */
export const heartbeatDisplaySchema = z.object({
  power: displayPowerSchema,
  brightnessPct: z.number().min(0).max(100).nullable(),
  hdmi: displayStateSchema.optional(),
});
export type HeartbeatDisplay = z.infer<typeof heartbeatDisplaySchema>;

/** §8 play event. `eventId` is `{deviceId}:{storeId}:{seq}`; `seq` never repeats within a store. */
export const playEventSchema = z.object({
  eventId: z.string(),
  seq: z.number().int().positive(),
  storeId: z.string(),
  deviceId: z.string(),
  campaignId: z.string(),
  mediaSha256: z.string(),
  day: z.string(),
  scheduledAt: isoInstant,
  startedAt: isoInstant,
  endedAt: isoInstant,
  durationMs: count,
  outcome: outcomeSchema,
  inWindow: z.boolean(),
  played: count,
  target: count,
  display: displayStateSchema,
  clockSynced: z.boolean(),
});
export type PlayEvent = z.infer<typeof playEventSchema>;

/** §3 `event` message: applied, rejected, media-failed, player-restarted, clock-jump, ... */
export const agentEventSchema = z.object({
  ts: isoInstant,
  type: z.string().min(1),
  detail: z.unknown(),
});
export type AgentEvent = z.infer<typeof agentEventSchema>;

/** One campaign's day, as in the heartbeat and the `report` command. */
export const complianceSchema = z.object({
  campaignId: z.string(),
  day: z.string(),
  played: count,
  target: count,
  onTrack: z.boolean(),
});
export type Compliance = z.infer<typeof complianceSchema>;

/** A Raspberry Pi's get_throttled word, decoded. */
export const throttledSchema = z.object({
  /** The firmware's word as read, e.g. `0x50005`. */
  raw: z.string(),
  underVoltageNow: z.boolean(),
  freqCappedNow: z.boolean(),
  throttledNow: z.boolean(),
  softTempLimitNow: z.boolean(),
  underVoltageOccurred: z.boolean(),
  freqCappedOccurred: z.boolean(),
  throttledOccurred: z.boolean(),
  softTempLimitOccurred: z.boolean(),
});

export type ThrottledState = z.infer<typeof throttledSchema>;

/**
 * The heartbeat fields the agent adds to the link's own (ts, deviceId, uptimeSec, backlog). All
 * optional: when sampling them fails the link still sends the basics.
 */
export const heartbeatFieldsSchema = z.object({
  storeId: z.string().optional(),
  store: z.object({ state: z.enum(['ok', 'full', 'degraded']), pending: count, lastError: z.string().optional() }).optional(),
  cpuTempC: z.number().nullable().optional(),
  load1: z.number().optional(),
  memUsedPct: z.number().optional(),
  diskFreeMB: z.number().optional(),
  throttled: throttledSchema.optional(),
  player: z
    .object({ state: z.enum(['playing', 'idle', 'down']), campaignId: z.string().nullable(), url: z.string().nullable(), hwdec: z.string().optional() })
    .optional(),
  clockSynced: z.boolean().optional(),
  display: z.union([heartbeatDisplaySchema, displayStateSchema]).optional(),
  compliance: z.array(complianceSchema).optional(),
  /** The running release (issue 13), as in the status document, and where an update stands. */
  agentVersion: z.string().optional(),
  update: z.object({ state: z.string(), target: z.string().optional() }).optional(),
  /** The groups the screen is in (its config): `signagectl update --group` finds a group's screens by it. */
  groups: z.array(z.string()).optional(),
});
export type HeartbeatFields = z.infer<typeof heartbeatFieldsSchema>;

/** §8 heartbeat (QoS 0). */
export const heartbeatSchema = z.object({ ts: isoInstant, deviceId: z.string(), uptimeSec: count, ...heartbeatFieldsSchema.shape, backlog: count });
export type Heartbeat = z.infer<typeof heartbeatSchema>;

const versionsSchema = z.object({ device: z.number().int().positive().optional(), groups: z.record(z.string(), z.number().int().positive()) });
/** Versions in force per source, assignments and overrides: what the NOC compares with what it published. */
export const appliedSchema = versionsSchema.extend({ overrides: versionsSchema });
export type Applied = z.infer<typeof appliedSchema>;

/** §8 birth message, retained. */
export const statusOnlineSchema = z.object({
  online: z.literal(true),
  session: count,
  storeId: z.string(),
  agentVersion: z.string(),
  bootedAt: isoInstant,
  applied: appliedSchema,
});
/** §8 Last Will, and what the agent says itself before a clean disconnect (which deletes the Will). */
export const statusOfflineSchema = z.object({ online: z.literal(false), session: count });
export const statusSchema = z.discriminatedUnion('online', [statusOnlineSchema, statusOfflineSchema]);
export type StatusOnline = z.infer<typeof statusOnlineSchema>;
export type StatusOffline = z.infer<typeof statusOfflineSchema>;
export type Status = z.infer<typeof statusSchema>;

/** §7 result. `id` is null when a request that failed to decode had none (answered on its response topic). */
export const commandResultSchema = z.discriminatedUnion('ok', [
  z.object({ id: z.string().nullable(), ok: z.literal(true), result: z.unknown() }),
  z.object({ id: z.string().nullable(), ok: z.literal(false), error: z.string() }),
]);
export type CommandResult = z.infer<typeof commandResultSchema>;

// --- builders: values in, published shape out (time is an argument; nothing here reads a clock)

const iso = (t: number): string => new Date(t).toISOString();

export interface PlayFacts {
  deviceId: string;
  storeId: string;
  seq: number;
  campaignId: string;
  mediaSha256: string;
  day: string;
  scheduledAt: number;
  startedAt: number;
  endedAt: number;
  durationMs: number;
  outcome: Outcome;
  inWindow: boolean;
  played: number;
  target: number;
  display: DisplayState;
  clockSynced: boolean;
}

/** The play event of a closed play (instants in epoch ms). */
export function playEvent(f: PlayFacts): PlayEvent {
  return {
    eventId: `${f.deviceId}:${f.storeId}:${f.seq}`,
    seq: f.seq,
    storeId: f.storeId,
    deviceId: f.deviceId,
    campaignId: f.campaignId,
    mediaSha256: f.mediaSha256,
    day: f.day,
    scheduledAt: iso(f.scheduledAt),
    startedAt: iso(f.startedAt),
    endedAt: iso(f.endedAt),
    durationMs: f.durationMs,
    outcome: f.outcome,
    inWindow: f.inWindow,
    played: f.played,
    target: f.target,
    display: f.display,
    clockSynced: f.clockSynced,
  };
}

export function agentEvent(at: number, type: string, detail: unknown): AgentEvent {
  return { ts: iso(at), type, detail };
}

export function heartbeat(a: { now: number; deviceId: string; bootedAt: number; fields: HeartbeatFields; backlog: number }): Heartbeat {
  return {
    ts: iso(a.now),
    deviceId: a.deviceId,
    uptimeSec: Math.max(0, Math.round((a.now - a.bootedAt) / 1000)),
    ...a.fields,
    backlog: a.backlog,
  };
}

export function statusOnline(a: { session: number; storeId: string; agentVersion: string; bootedAt: number; applied: Applied }): StatusOnline {
  return { online: true, session: a.session, storeId: a.storeId, agentVersion: a.agentVersion, bootedAt: iso(a.bootedAt), applied: a.applied };
}

export function statusOffline(session: number): StatusOffline {
  return { online: false, session };
}

export function commandOk(id: string | null, result: unknown): CommandResult {
  return { id, ok: true, result };
}

export function commandError(id: string | null, error: string): CommandResult {
  return { id, ok: false, error };
}
