import type { Assignment, CommandRequest, Override } from './schemas.js';
import { playEventSchema, type AgentEvent, type CommandResult, type Heartbeat, type PlayEvent, type Status } from './outbound.js';
import type { DeviceKind } from './topics.js';

// Every message's payload bytes, and which payload goes on which topic. zigbee2mqtt's
// lib/types/api.ts is the model: one map from topic kind to payload type, so publishing the
// wrong document on a topic is a compile error rather than a confused NOC.

/**
 * `{p}/device/{id}/{kind}` (and `{p}/group/{g}/{kind}` for the desired-state kinds) → payload.
 * `null` on override: the empty payload that clears it.
 */
export interface ProtocolTopics {
  assignment: Assignment;
  override: Override | null;
  cmd: CommandRequest;
  'cmd/result': CommandResult;
  status: Status;
  heartbeat: Heartbeat;
  play: PlayEvent;
  event: AgentEvent;
}

export type TopicKind = keyof ProtocolTopics & DeviceKind;
export type PayloadOf<K extends TopicKind> = ProtocolTopics[K];
/** What the agent publishes; the rest is what operators publish to it. */
export type OutboundKind = 'cmd/result' | 'status' | 'heartbeat' | 'play' | 'event';

/** §3 table: QoS and retain flag of each topic kind. */
export const DELIVERY: { readonly [K in TopicKind]: { readonly qos: 0 | 1; readonly retain: boolean } } = {
  assignment: { qos: 1, retain: true },
  override: { qos: 1, retain: true },
  cmd: { qos: 1, retain: false },
  'cmd/result': { qos: 1, retain: false },
  status: { qos: 1, retain: true },
  heartbeat: { qos: 0, retain: false },
  play: { qos: 1, retain: false },
  event: { qos: 1, retain: false },
};

// A play event is flat, so a key list fixes both its fields and their order whatever object
// it is handed (JSON.stringify emits a replacer array's keys in the array's order).
const PLAY_KEYS = Object.keys(playEventSchema.shape);

export function encodePlayEvent(ev: PlayEvent): string {
  return JSON.stringify(ev, PLAY_KEYS);
}

export function encodeEvent(e: AgentEvent): string {
  return JSON.stringify({ ts: e.ts, type: e.type, detail: e.detail });
}

/** Birth or Will (a Will is handed to the broker as bytes, hence the Buffer form beside it). */
export function encodeStatus(s: Status): string {
  return JSON.stringify(s);
}

export function encodeStatusBytes(s: Status): Buffer {
  return Buffer.from(encodeStatus(s));
}

export function encodeHeartbeat(hb: Heartbeat): string {
  return JSON.stringify(hb);
}

export function encodeCommandResult(r: CommandResult): string {
  return JSON.stringify(r.ok ? { id: r.id, ok: true, result: r.result } : { id: r.id, ok: false, error: r.error });
}

export function encodeCommand(c: CommandRequest): string {
  return JSON.stringify(c);
}

export function encodeAssignment(a: Assignment): string {
  return JSON.stringify(a);
}

export function encodeOverride(o: Override | null): string {
  return o === null ? '' : JSON.stringify(o);
}

const ENCODERS: { readonly [K in TopicKind]: (p: ProtocolTopics[K]) => string } = {
  assignment: encodeAssignment,
  override: encodeOverride,
  cmd: encodeCommand,
  'cmd/result': encodeCommandResult,
  status: encodeStatus,
  heartbeat: encodeHeartbeat,
  play: encodePlayEvent,
  event: encodeEvent,
};

/** The payload of `kind`: the one way a document becomes bytes on its topic. */
export function encode<K extends TopicKind>(kind: K, payload: ProtocolTopics[K]): string {
  return (ENCODERS[kind] as (p: ProtocolTopics[K]) => string)(payload);
}

/** Publish options as MQTT clients take them (mqtt.js and the link's Wire both accept this shape). */
export interface Delivery {
  qos: 0 | 1;
  retain?: boolean;
  correlationData?: Buffer;
}

/** A typed publish: the payload's type follows the kind. */
export type TypedPublish<R> = <K extends TopicKind>(kind: K, payload: ProtocolTopics[K], route?: { topic?: string; correlationData?: Buffer }) => R;

/**
 * Wraps a raw publish (topic, bytes, options) into a typed one for one device's topics. `route`
 * sends elsewhere than `topicOf(kind)`: a command's result goes to the request's reply topic.
 */
export function typedPublisher<R>(topicOf: (kind: TopicKind) => string, raw: (topic: string, payload: string, opts: Delivery) => R): TypedPublish<R> {
  return (kind, payload, route) => {
    const d = DELIVERY[kind];
    // retain only when set, so the options are what hand-written publishes passed before.
    const opts: Delivery = { qos: d.qos, ...(d.retain ? { retain: true } : {}), ...(route?.correlationData ? { correlationData: route.correlationData } : {}) };
    return raw(route?.topic ?? topicOf(kind), encode(kind, payload), opts);
  };
}
