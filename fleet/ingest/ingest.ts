import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { deviceTopic } from '../../agent/protocol/index.js';
import type { FleetConfig } from '../config.js';
import type { Logger } from '../log.js';
import { DEFERRED, deferredAcks, PubackWriter } from './acks.js';
import type { Batcher } from './batcher.js';
import { decodeMessage } from './decode.js';

/** What the ingest has seen since it started (logs, tests; Prometheus later). */
export interface IngestCounters {
  received: number;
  bad: number;
  badByReason: Record<string, number>;
  connects: number;
  /** Times the ingest stopped reading because the batcher was at its high-water mark. */
  held: number;
}

/**
 * MQTT 5 ingest with a persistent session (clean start off, Session Expiry): play, event and
 * heartbeat through shared subscriptions, so N processes split them; the retained status on a plain
 * subscription. Every QoS 1 message is acked only after the batch that holds it has committed
 * (acks.ts); a message that does not decode is counted, logged, and acked in its turn.
 */
export class MqttIngest {
  private client: MqttClient | undefined;
  private generation = 0;
  private stopping = false;
  private readonly acks = new PubackWriter();
  readonly counters: IngestCounters = { received: 0, bad: 0, badByReason: {}, connects: 0, held: 0 };

  constructor(
    private readonly cfg: FleetConfig['mqtt'],
    private readonly password: string | undefined,
    private readonly batcher: Batcher,
    private readonly log: Logger,
    private readonly batchRows: number,
  ) {}

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  /** The subscriptions: shared for the bulk, plain for the retained status. */
  subscriptions(): Record<string, { qos: 0 | 1 }> {
    const p = this.cfg.topicPrefix;
    const share = (kind: 'play' | 'event' | 'heartbeat'): string => `$share/${this.cfg.shareGroup}/${deviceTopic(p, '+', kind)}`;
    return { [share('play')]: { qos: 1 }, [share('event')]: { qos: 1 }, [share('heartbeat')]: { qos: 0 }, [deviceTopic(p, '+', 'status')]: { qos: 1 } };
  }

  async start(): Promise<void> {
    // Started again after a stop: take messages again (a stopped ingest leaves them unacked, for
    // the broker to send again, and once ignored every message of a restarted service that way).
    this.stopping = false;
    const opts: IClientOptions = {
      protocolVersion: 5,
      clientId: this.cfg.clientId,
      clean: false,
      keepalive: this.cfg.keepaliveSec,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      resubscribe: false,
      properties: { sessionExpiryInterval: this.cfg.sessionExpirySec, receiveMaximum: this.cfg.receiveMaximum, maximumPacketSize: 1024 * 1024 },
      ...(this.cfg.username ? { username: this.cfg.username } : {}),
      ...(this.password !== undefined ? { password: this.password } : {}),
      ...deferredAcks((topic, payload, messageId) => this.arrive(topic, payload, messageId)),
    };
    const client = mqtt.connect(this.cfg.url, { ...opts, manualConnect: true });
    this.client = client;
    client.on('error', (e) => {
      if (e !== DEFERRED) this.log.warn({ err: e.message }, 'mqtt error');
    });
    client.on('connect', (connack) => {
      this.generation++;
      this.counters.connects++;
      this.log.info({ sessionPresent: connack.sessionPresent, generation: this.generation }, 'connected');
      client.subscribe(this.subscriptions(), (err, granted) => {
        if (err) this.log.error({ err: err.message }, 'subscribe failed');
        else this.log.info({ granted: granted?.map((g) => ({ topic: g.topic, qos: g.qos })) }, 'subscribed');
      });
    });
    client.on('close', () => this.log.debug('connection closed'));
    // QoS 0 (heartbeats) arrive here; QoS 1 comes through customHandleAcks and never emits 'message'.
    // Nothing to hold them back with: the QoS 1 arrivals around them do it, and the batcher drops
    // QoS 0 beyond its own bound.
    client.on('message', (topic, payload, packet) => {
      if (packet.qos === 0) void this.arrive(topic, payload, undefined);
    });
    client.connect();
  }

  /**
   * Messages the batcher may hold before the ingest stops reading from the broker: what the broker
   * may have in flight to us (Receive Maximum), and at least one batch being written plus one filling.
   */
  private get highWater(): number {
    return Math.max(this.cfg.receiveMaximum, 2 * this.batchRows);
  }

  private arrive(topic: string, payload: Buffer, messageId: number | undefined): Promise<void> | undefined {
    if (this.stopping) return undefined; // not acked: the broker sends it again to the next session
    this.counters.received++;
    const gen = this.generation;
    const client = this.client;
    // A PUBACK goes only on the connection that delivered the message; after a reconnect the broker
    // sends it again (same packet id, DUP) and the archive dedupes it.
    const ack = messageId === undefined || !client ? undefined : () => {
      if (this.generation === gen && client.connected) this.acks.add(client, messageId);
    };
    const d = decodeMessage(this.cfg.topicPrefix, topic, payload);
    if (d.ok) this.batcher.add({ item: d.item, ...(ack ? { ack } : {}) });
    else this.dropped(topic, d, ack);
    if (this.batcher.waiting >= this.highWater) {
      this.counters.held++;
      return this.batcher.whenBelow(this.highWater);
    }
    return undefined;
  }

  private dropped(topic: string, d: { reason: string; deviceId?: string }, ack: (() => void) | undefined): void {
    this.counters.bad++;
    const key = d.reason.split(':')[0] ?? d.reason;
    const n = (this.counters.badByReason[key] = (this.counters.badByReason[key] ?? 0) + 1);
    if (n <= 20 || n % 1000 === 0) this.log.warn({ topic: topic.slice(0, 200), deviceId: d.deviceId, reason: d.reason.slice(0, 300), count: n }, 'message dropped');
    this.batcher.add(ack ? { ack } : {});
  }

  /** Stops taking messages, commits and acks what waits, then disconnects (the session stays). */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.batcher.drain();
    // The last commit's PUBACKs are due at the end of the tick, after the disconnect would go.
    this.acks.flush();
    const c = this.client;
    this.client = undefined;
    if (c) await c.endAsync();
  }
}
