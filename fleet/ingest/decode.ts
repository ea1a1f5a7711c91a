import { isUtf8 } from 'node:buffer';
import {
  agentEventSchema,
  heartbeatSchema,
  parseDeviceTopic,
  playEventSchema,
  statusSchema,
  type AgentEvent,
  type Heartbeat,
  type PlayEvent,
  type Status,
} from '../../agent/protocol/index.js';
import { formatIssues } from '../../agent/protocol/schemas.js';

// A device topic's payload → what the archive stores, or why it was dropped. Total: any bytes
// from the broker give a result, never a throw (hostile payloads are counted and logged).

/** PROTOCOL §3 bound; the CONNECT's Maximum Packet Size keeps bigger ones at the broker. */
export const MAX_PAYLOAD = 256 * 1024;

export type Item =
  | { kind: 'play'; deviceId: string; play: PlayEvent; raw: string }
  | { kind: 'event'; deviceId: string; event: AgentEvent; raw: string }
  | { kind: 'heartbeat'; deviceId: string; heartbeat: Heartbeat; raw: string }
  | { kind: 'status'; deviceId: string; status: Status; raw: string };

export type Decoded = { ok: true; item: Item } | { ok: false; reason: string; deviceId?: string };

const SCHEMAS = { play: playEventSchema, event: agentEventSchema, heartbeat: heartbeatSchema, status: statusSchema } as const;
type Kind = keyof typeof SCHEMAS;

export function decodeMessage(prefix: string, topic: string, payload: Buffer): Decoded {
  const where = parseDeviceTopic(prefix, topic);
  if (!where || !(where.kind in SCHEMAS)) return { ok: false, reason: `not a telemetry topic: ${topic.slice(0, 200)}` };
  const kind = where.kind as Kind;
  const { deviceId } = where;
  if (payload.length > MAX_PAYLOAD) return { ok: false, deviceId, reason: `payload too large: ${payload.length} bytes` };
  if (payload.length === 0) return { ok: false, deviceId, reason: 'empty payload' };
  // Checked on the bytes: re-encoding the decoded text to compare copied every payload once more.
  if (!isUtf8(payload)) return { ok: false, deviceId, reason: 'payload is not UTF-8' };
  const raw = payload.toString('utf8');
  let doc: unknown;
  try {
    doc = JSON.parse(raw);
  } catch (e) {
    return { ok: false, deviceId, reason: `payload is not JSON: ${(e as Error).message}` };
  }
  const r = SCHEMAS[kind].safeParse(doc);
  if (!r.success) return { ok: false, deviceId, reason: `invalid ${kind}: ${formatIssues(r.error).join('; ')}` };
  switch (kind) {
    case 'play': {
      const play = r.data as PlayEvent;
      // A device publishes only its own plays: a payload naming another screen is spoofed.
      if (play.deviceId !== deviceId) return { ok: false, deviceId, reason: `spoofed: play of ${play.deviceId} on ${deviceId}'s topic` };
      if (play.eventId !== `${play.deviceId}:${play.storeId}:${play.seq}`) return { ok: false, deviceId, reason: `eventId ${play.eventId} is not {id}:{storeId}:{seq}` };
      return { ok: true, item: { kind, deviceId, play, raw } };
    }
    case 'heartbeat': {
      const heartbeat = r.data as Heartbeat;
      if (heartbeat.deviceId !== deviceId) return { ok: false, deviceId, reason: `spoofed: heartbeat of ${heartbeat.deviceId} on ${deviceId}'s topic` };
      return { ok: true, item: { kind, deviceId, heartbeat, raw } };
    }
    case 'event':
      return { ok: true, item: { kind, deviceId, event: r.data as AgentEvent, raw } };
    case 'status':
      return { ok: true, item: { kind, deviceId, status: r.data as Status, raw } };
  }
}
