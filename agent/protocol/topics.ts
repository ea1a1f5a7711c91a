// PROTOCOL §3 topic names: built here and only here (the agent, signagectl, the broker ACLs and a
// fleet service all spell them through these), and the reverse mapping of inbound topics.

/** What may follow `{p}/device/{id}/`. */
export const DEVICE_KINDS = ['assignment', 'override', 'alert', 'cmd', 'cmd/result', 'status', 'heartbeat', 'play', 'event'] as const;
export type DeviceKind = (typeof DEVICE_KINDS)[number];

/** What may follow `{p}/group/{g}/`. */
export const GROUP_KINDS = ['assignment', 'override', 'alert'] as const;
export type GroupKind = (typeof GROUP_KINDS)[number];

/** What the device publishes for the NOC and the proof-of-play store (`cmd/result` goes to the caller). */
export const TELEMETRY_KINDS = ['status', 'heartbeat', 'play', 'event'] as const;
export type TelemetryKind = (typeof TELEMETRY_KINDS)[number];

/** Fleet-wide topics directly under `{p}/`: the fleet alert (§10) and the key set (§9). */
export type FleetTopic = 'fleet/alert' | 'keys';

/** A device id, or `+` to match every device (subscriptions, ACL patterns). */
export function deviceTopic(prefix: string, deviceId: string, kind: DeviceKind): string {
  return `${prefix}/device/${deviceId}/${kind}`;
}

/** A group name, or `+` to match every group. */
export function groupTopic(prefix: string, group: string, kind: GroupKind): string {
  return `${prefix}/group/${group}/${kind}`;
}

export function fleetTopic(prefix: string, which: FleetTopic): string {
  return `${prefix}/${which}`;
}

/** A device's document topic for `device/{id}` or `group/{g}` (a §9 target names the same pair). */
export function targetTopic(prefix: string, target: { device: string } | { group: string }, kind: GroupKind): string {
  return 'device' in target ? deviceTopic(prefix, target.device, kind) : groupTopic(prefix, target.group, kind);
}

/** The device id and kind of a `{p}/device/{id}/{kind}` topic; undefined for any other topic. */
export function parseDeviceTopic(prefix: string, topic: string): { deviceId: string; kind: DeviceKind } | undefined {
  const stem = `${prefix}/device/`;
  if (!topic.startsWith(stem)) return undefined;
  const rest = topic.slice(stem.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) return undefined;
  const kind = rest.slice(slash + 1);
  return isDeviceKind(kind) ? { deviceId: rest.slice(0, slash), kind } : undefined;
}

function isDeviceKind(s: string): s is DeviceKind {
  return (DEVICE_KINDS as readonly string[]).includes(s);
}

export type InboundKind = 'assignment' | 'override' | 'alert' | 'cmd' | 'status';

export interface InboundTopic {
  kind: InboundKind;
  /** Store source key: `device`, `group/{g}`, or `fleet` (the §10 fleet alert). */
  source: string;
  /** §9 target the signed document must name: `device/{id}`, `group/{g}` or `fleet`. */
  target: string;
}

/** One device's topics, from its config. */
export class Topics {
  readonly device: string;

  constructor(readonly prefix: string, readonly deviceId: string, readonly groups: readonly string[]) {
    this.device = `${prefix}/device/${deviceId}`;
  }

  /** The §9 target a document for this device names. */
  get target(): string { return `device/${this.deviceId}`; }
  of(kind: DeviceKind): string { return deviceTopic(this.prefix, this.deviceId, kind); }
  get status(): string { return this.of('status'); }
  get heartbeat(): string { return this.of('heartbeat'); }
  get cmd(): string { return this.of('cmd'); }
  get cmdResult(): string { return this.of('cmd/result'); }
  outbox(kind: 'play' | 'event'): string { return this.of(kind); }

  /** Every topic the agent subscribes to, with its QoS. */
  subscriptions(): Record<string, { qos: 1 }> {
    const subs: Record<string, { qos: 1 }> = {};
    for (const k of ['assignment', 'override', 'cmd', 'status'] as const) subs[this.of(k)] = { qos: 1 };
    for (const g of this.groups) {
      subs[groupTopic(this.prefix, g, 'assignment')] = { qos: 1 };
      subs[groupTopic(this.prefix, g, 'override')] = { qos: 1 };
    }
    // §10 alerts: the device's, each group's, and the fleet's (every screen, whatever its groups).
    subs[this.of('alert')] = { qos: 1 };
    for (const g of this.groups) subs[groupTopic(this.prefix, g, 'alert')] = { qos: 1 };
    subs[fleetTopic(this.prefix, 'fleet/alert')] = { qos: 1 };
    return subs;
  }

  /** Maps a received topic to what it carries; undefined for topics we did not ask for. */
  parse(topic: string): InboundTopic | undefined {
    if (topic === fleetTopic(this.prefix, 'fleet/alert')) return { kind: 'alert', source: 'fleet', target: 'fleet' };
    const dev = `${this.device}/`;
    if (topic.startsWith(dev)) {
      const rest = topic.slice(dev.length);
      if (rest === 'assignment' || rest === 'override' || rest === 'alert' || rest === 'cmd' || rest === 'status') {
        return { kind: rest, source: 'device', target: this.target };
      }
      return undefined;
    }
    const grp = `${this.prefix}/group/`;
    if (topic.startsWith(grp)) {
      const parts = topic.slice(grp.length).split('/');
      const [g, kind] = parts;
      if (parts.length !== 2 || g === undefined || !this.groups.includes(g)) return undefined;
      if (kind === 'assignment' || kind === 'override' || kind === 'alert') return { kind, source: `group/${g}`, target: `group/${g}` };
    }
    return undefined;
  }
}
