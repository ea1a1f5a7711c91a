// PROTOCOL §3 topic names, built once from the config, and the reverse mapping of inbound topics.

export type InboundKind = 'assignment' | 'override' | 'cmd' | 'status';

export interface InboundTopic {
  kind: InboundKind;
  /** Store source key: `device` or `group/{g}`. */
  source: string;
  /** §9 target the signed document must name: `device/{id}` or `group/{g}`. */
  target: string;
}

export class Topics {
  readonly device: string;

  constructor(readonly prefix: string, readonly deviceId: string, readonly groups: readonly string[]) {
    this.device = `${prefix}/device/${deviceId}`;
  }

  get status(): string { return `${this.device}/status`; }
  get heartbeat(): string { return `${this.device}/heartbeat`; }
  get cmd(): string { return `${this.device}/cmd`; }
  get cmdResult(): string { return `${this.device}/cmd/result`; }
  outbox(kind: 'play' | 'event'): string { return `${this.device}/${kind}`; }

  /** Every topic the agent subscribes to, with its QoS. */
  subscriptions(): Record<string, { qos: 1 }> {
    const subs: Record<string, { qos: 1 }> = {};
    for (const t of [`${this.device}/assignment`, `${this.device}/override`, this.cmd, this.status]) subs[t] = { qos: 1 };
    for (const g of this.groups) {
      subs[`${this.prefix}/group/${g}/assignment`] = { qos: 1 };
      subs[`${this.prefix}/group/${g}/override`] = { qos: 1 };
    }
    return subs;
  }

  /** Maps a received topic to what it carries; undefined for topics we did not ask for. */
  parse(topic: string): InboundTopic | undefined {
    const dev = `${this.device}/`;
    if (topic.startsWith(dev)) {
      const rest = topic.slice(dev.length);
      if (rest === 'assignment' || rest === 'override' || rest === 'cmd' || rest === 'status') {
        return { kind: rest, source: 'device', target: `device/${this.deviceId}` };
      }
      return undefined;
    }
    const grp = `${this.prefix}/group/`;
    if (topic.startsWith(grp)) {
      const parts = topic.slice(grp.length).split('/');
      const [g, kind] = parts;
      if (parts.length !== 2 || g === undefined || !this.groups.includes(g)) return undefined;
      if (kind === 'assignment' || kind === 'override') return { kind, source: `group/${g}`, target: `group/${g}` };
    }
    return undefined;
  }
}
