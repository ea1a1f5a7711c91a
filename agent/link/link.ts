// size: the connection's life (attempt, CONNECT, close, backoff) and the routing of what arrives
// share one piece of state (client, up, session, pending acks); the parts that need none of it
// are beside it (status, subscriptions, intake, the key set, commands, heartbeat, outbox, rejected).
import mqtt, { type IClientOptions, type MqttClient, type Packet } from 'mqtt';
import type { Config } from '../config/config.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import type { EpochMs } from '../core/types.js';
import type { Store } from '../store/store.js';
import type { AppliedVersions } from '../core/desired.js';
import type { EventRecorder } from '../events/recorder.js';
import { backoffDelay, linkClientOptions } from './connect-options.js';
import { CommandRunner, type ReplyRoute, type CommandReply } from './commands.js';
import { trustOf, type Trust } from '../protocol/trust.js';
import { fleetTopic } from '../protocol/topics.js';
import { KeySetIntake } from './keyset.js';
import { HeartbeatPublisher } from './heartbeat.js';
import type { LinkHost } from './host.js';
import { DesiredIntake } from './intake.js';
import { OutboxPublisher } from './outbox.js';
import { RejectedReporter } from './rejected.js';
import { StatusPublisher } from './status.js';
import { Subscriptions } from './subscriptions.js';
import { Topics } from '../protocol/topics.js';
import { typedPublisher, type TypedPublish } from '../protocol/encode.js';
import type { PublishOpts, Wire } from './wire.js';

export interface Link {
  attach(host: LinkHost): void;
  start(): Promise<void>;
  stop(): Promise<void>;
  connected(): boolean;
  notifyOutbox(): void;
  publishStatus(): Promise<void>;
}

export interface LinkContext {
  config: Config;
  store: Store;
  /** The link wakes its outbox on every event recorded, and records its own through it. */
  events: EventRecorder;
  clock: Clock;
  log: Logger;
  agentVersion: string;
  bootedAt: EpochMs;
  /** Test and bench knobs; production uses the defaults. */
  tuning?: {
    noSubscriberRetryMs?: number;
    trimEveryMs?: number;
    connectTimeoutMs?: number;
    /** `rejected` coalescing window per topic (PROTOCOL v1.1 §3: a minute); 0 writes each one. */
    rejectedWindowMs?: number;
    /** First retry of a refused subscription (30 s, doubling to 15 min). */
    subscribeRetryMs?: number;
    /** Delay before fetching the retained copy of a topic whose message was dropped unread. */
    refetchMs?: number;
    /** Desired-state documents waiting for the store (default 64). */
    intakeMaxQueued?: number;
  };
}

/**
 * The MQTT 5 link (PROTOCOL §3, §7, §8). One mqtt.js client per connection attempt, with mqtt.js's
 * own reconnect off: the Last Will is fixed in CONNECT and must carry that connection's session
 * number, and we want capped, jittered exponential backoff (mqtt.js only has a fixed period).
 * A session number is drawn from the store before an attempt and reused by the next attempt when
 * the broker cannot have seen it (connection refused at TCP level, or CONNACK refusing us), so
 * `session` rises by one per accepted connection, give or take an unanswered CONNECT or a restart.
 * Dead links: mqtt.js pings after one keepalive of silence from the broker and drops the
 * connection at 1.5 keepalives; the 'close' then schedules our reconnect.
 */
export class MqttLink implements Link {
  private host: LinkHost | undefined;
  private client: MqttClient | undefined;
  private up = false;
  private stopping = false;
  private session = 0;
  private pendingSession: number | undefined;
  private failures = 0;
  private lastError: string | undefined;
  private reconnectTimer: TimerHandle | undefined;
  /** PUBACK reason codes by packet id, captured before mqtt.js hides them (it reports 0x10 as success). */
  private readonly pubackRc = new Map<number, number>();
  private pending = new Set<(e: Error) => void>();
  private readonly subscriptions: Subscriptions;
  readonly rejected: RejectedReporter;
  private readonly topics: Topics;
  /** Signed mode's configured keys (undefined: plain JSON mode); the key set is added per message. */
  private readonly trustBase: Trust | undefined;
  /** The key set on {p}/keys: only with root keys configured. */
  readonly keySets: KeySetIntake | undefined;
  private readonly keysTopic: string | undefined;
  readonly intake: DesiredIntake;
  readonly commands: CommandRunner;
  readonly outbox: OutboxPublisher;
  private readonly heartbeat: HeartbeatPublisher;
  private readonly wire: Wire;
  private readonly send: TypedPublish<Promise<number>>;
  private readonly status: StatusPublisher;

  constructor(private readonly ctx: LinkContext) {
    const { config, store, clock, log, events } = ctx;
    events.onRecorded(() => this.notifyOutbox());
    this.topics = new Topics(config.mqtt.topicPrefix, config.deviceId, config.groups);
    // Read by the config schema: a bad key never gets this far.
    this.trustBase = trustOf(config.security.assignmentKeys, config.security.rootKeys);
    this.wire = { connected: () => this.up, publish: (t, p, o) => this.publishRaw(t, p, o) };
    this.send = typedPublisher((k) => this.topics.of(k), (t, p, o) => this.publishRaw(t, p, o));
    this.status = new StatusPublisher({
      log, send: this.send, agentVersion: ctx.agentVersion, bootedAt: ctx.bootedAt,
      session: () => this.session,
      live: () => this.up && !this.stopping,
      storeId: () => store.storeId(),
      applied: () => this.applied(),
    });
    this.subscriptions = new Subscriptions({
      clock, log, events,
      live: () => (this.up && !this.stopping ? this.client : undefined),
      busy: () => this.intake.queued > 0,
      ...(ctx.tuning?.subscribeRetryMs !== undefined ? { retryMs: ctx.tuning.subscribeRetryMs } : {}),
      ...(ctx.tuning?.refetchMs !== undefined ? { refetchMs: ctx.tuning.refetchMs } : {}),
    });
    this.rejected = new RejectedReporter({
      clock, log, events,
      ...(ctx.tuning?.rejectedWindowMs !== undefined ? { windowMs: ctx.tuning.rejectedWindowMs } : {}),
    });
    const roots = config.security.rootKeys;
    this.keysTopic = roots ? fleetTopic(config.mqtt.topicPrefix, 'keys') : undefined;
    this.keySets = roots
      ? new KeySetIntake({
        store, events, clock, log, roots, rejected: this.rejected,
        taken: new Set([...roots.keys(), ...(config.security.assignmentKeys?.keys() ?? [])]),
        // Documents signed by a new key that came before the set are fetched again.
        onChange: () => this.refetchDesired(),
      })
      : undefined;
    this.intake = new DesiredIntake({
      log, clock, trust: () => this.trust(), rejected: this.rejected,
      deliver: (m) => this.host?.offerDesired(m),
      refetch: (topic) => this.subscriptions.refetch(topic),
      ...(ctx.tuning?.intakeMaxQueued !== undefined ? { maxQueued: ctx.tuning.intakeMaxQueued } : {}),
    });
    this.commands = new CommandRunner({
      store, clock, log, trust: () => this.trust(),
      target: this.topics.target,
      defaultReplyTopic: this.topics.cmdResult,
      host: () => this.host,
      reply: (route, body) => this.reply(route, body),
      rejected: this.rejected,
    });
    this.outbox = new OutboxPublisher({
      store, events, clock, log, wire: this.wire, topics: this.topics,
      inFlight: config.outbox.inFlight, maxEvents: config.outbox.maxEvents,
      ...(ctx.tuning?.noSubscriberRetryMs !== undefined ? { noSubscriberRetryMs: ctx.tuning.noSubscriberRetryMs } : {}),
      ...(ctx.tuning?.trimEveryMs !== undefined ? { trimEveryMs: ctx.tuning.trimEveryMs } : {}),
    });
    this.heartbeat = new HeartbeatPublisher({
      clock, log, store, wire: this.wire, topics: this.topics,
      deviceId: config.deviceId, bootedAt: ctx.bootedAt, periodSec: config.heartbeatSec,
      host: () => this.host,
    });
  }

  /** What verifies the next signed message: the configured keys and the key set in force. */
  trust(): Trust | undefined {
    return this.trustBase && { ...this.trustBase, keySet: this.keySets?.keySet };
  }

  /** Asks the broker for every retained desired-state document again (the intake ignores repeats). */
  private refetchDesired(): void {
    for (const t of Object.keys(this.topics.subscriptions())) {
      const kind = this.topics.parse(t)?.kind;
      if (kind === 'assignment' || kind === 'override' || kind === 'alert') this.subscriptions.refetch(t);
    }
  }

  attach(host: LinkHost): void {
    this.host = host;
  }

  async start(): Promise<void> {
    this.stopping = false;
    this.outbox.start();
    this.heartbeat.start();
    // Before the first connection: the retained documents verify against the stored key set.
    await this.keySets?.load();
    await this.attempt();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    // Inbound work stops first: nothing new reaches the store, which is stopped right after us.
    this.intake.stop();
    this.commands.stop();
    this.reconnectTimer?.cancel();
    this.subscriptions.reset();
    this.heartbeat.stop();
    this.outbox.stop();
    const c = this.client;
    if (!c) return;
    if (this.up) {
      // A clean DISCONNECT deletes the Will, so say "offline" ourselves, retained, first.
      await withTimeout(this.status.offline(), 3000).catch(() => undefined);
      await withTimeout(new Promise<void>((r) => c.end(false, {}, () => r())), 3000).catch(() => c.end(true));
    } else {
      c.end(true);
    }
    this.up = false;
    this.client = undefined;
    // The store is usually stopped right after us: let an interrupted drain finish its deletes
    // and a document being applied finish its transaction.
    await withTimeout(Promise.all([this.outbox.idle(), this.intake.idle(), this.commands.idle(), this.keySets?.idle()]), 3000).catch(() => undefined);
    await withTimeout(this.rejected.flush(), 3000).catch(() => undefined);
  }

  connected(): boolean {
    return this.up;
  }

  notifyOutbox(): void {
    this.outbox.kick();
  }

  publishStatus(): Promise<void> {
    return this.status.publish();
  }

  /** Current session number (0 before the first connection). */
  currentSession(): number {
    return this.session;
  }

  /** Versions in force, as in the status document (the host's; none before it is attached). */
  applied(): AppliedVersions {
    return this.host?.applied() ?? { groups: {}, overrides: { groups: {} } };
  }

  // --- connection management

  private async attempt(): Promise<void> {
    if (this.stopping) return;
    const { config, log } = this.ctx;
    let opts: IClientOptions;
    try {
      this.pendingSession ??= await this.ctx.store.nextSession();
      opts = await linkClientOptions(config, this.topics.status, this.pendingSession, this.ctx.tuning?.connectTimeoutMs ?? 15_000);
    } catch (e) {
      log.error({ err: e }, 'mqtt: cannot prepare the connection (password or TLS files?)');
      this.lastError = (e as Error).message;
      this.failures++;
      this.scheduleReconnect();
      return;
    }
    if (this.stopping) return;
    const session = this.pendingSession;
    let c: MqttClient;
    try {
      c = mqtt.connect(config.mqtt.url, opts);
    } catch (e) {
      this.lastError = (e as Error).message;
      this.failures++;
      this.scheduleReconnect();
      return;
    }
    this.client = c;
    const attempt = { connectSent: false, connackSeen: false };
    c.on('packetsend', (p: Packet) => {
      if (p.cmd === 'connect') attempt.connectSent = true;
    });
    c.on('packetreceive', (p: Packet) => {
      if (p.cmd === 'puback' && p.messageId !== undefined) this.pubackRc.set(p.messageId, p.reasonCode ?? 0);
      else if (p.cmd === 'connack') attempt.connackSeen = true;
    });
    c.on('connect', () => void this.onConnect(c, session));
    c.on('message', (topic, payload, packet) => this.onMessage(topic, payload, packet.retain, packet.properties?.responseTopic, packet.properties?.correlationData));
    c.on('error', (e) => {
      this.lastError = e.message;
      log.debug({ err: e }, 'mqtt error');
    });
    c.on('close', () => this.onClose(c, attempt));
  }

  private async onConnect(c: MqttClient, session: number): Promise<void> {
    if (c !== this.client) return;
    this.up = true;
    this.session = session;
    this.pendingSession = undefined;
    this.failures = 0;
    this.ctx.log.info({ session, url: this.ctx.config.mqtt.url }, 'mqtt connected');
    // Resubscribe even when the broker kept our session: a broker restarted without
    // persistence has forgotten it. Retained copies come again; the intake ignores repeats.
    // The birth follows whatever the SUBACK says (PROTOCOL v1.1 §8): a topic an ACL refuses is
    // retried later, it never leaves the retained status saying offline while heartbeats flow.
    // The key set first: mosquitto sends retained copies in subscription order, so the set is
    // in force before the documents it verifies arrive.
    const subs = this.keysTopic ? { [this.keysTopic]: { qos: 1 as const }, ...this.topics.subscriptions() } : this.topics.subscriptions();
    await this.subscriptions.onConnect(c, subs);
    if (c !== this.client || !this.up) return;
    await this.publishStatus();
    if (c !== this.client || !this.up) return;
    this.outbox.onConnect();
    this.heartbeat.beat();
  }

  private onClose(c: MqttClient, attempt: { connectSent: boolean; connackSeen: boolean }): void {
    if (c !== this.client) return;
    this.subscriptions.reset();
    const wasUp = this.up;
    // A CONNECT that got no answer may still have opened a session (with its Will) on the
    // broker: never reuse that number. Refused or never-sent attempts left nothing behind.
    if (!wasUp && attempt.connectSent && !attempt.connackSeen) this.pendingSession = undefined;
    this.up = false;
    const err = new Error('mqtt connection lost');
    for (const reject of this.pending) reject(err);
    this.pending.clear();
    this.pubackRc.clear();
    this.outbox.onDisconnect();
    c.removeAllListeners();
    c.on('error', () => undefined);
    c.end(true);
    if (this.stopping) return;
    if (wasUp) this.ctx.log.warn({ session: this.session }, 'mqtt connection lost');
    else this.failures++;
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopping) return;
    const { reconnectMinMs, reconnectMaxMs } = this.ctx.config.mqtt;
    const delay = backoffDelay(Math.max(1, this.failures), reconnectMinMs, reconnectMaxMs);
    // Say it on the first failure of a series and then now and again, not on every attempt.
    if (this.failures === 1 || this.failures % 20 === 0) {
      this.ctx.log.warn({ url: this.ctx.config.mqtt.url, failures: this.failures, retryMs: delay, error: this.lastError }, 'mqtt: cannot connect, retrying');
    }
    this.reconnectTimer?.cancel();
    this.reconnectTimer = this.ctx.clock.setTimer(delay, () => void this.attempt());
  }

  // --- traffic

  private publishRaw(topic: string, payload: string | Buffer, o: PublishOpts): Promise<number> {
    const c = this.client;
    if (!c || !this.up) return Promise.reject(new Error('not connected'));
    return new Promise<number>((resolve, reject) => {
      this.pending.add(reject);
      const opts = { qos: o.qos, retain: o.retain ?? false, ...(o.correlationData ? { properties: { correlationData: o.correlationData } } : {}) };
      c.publish(topic, payload, opts, (err, packet) => {
        this.pending.delete(reject);
        if (err) return reject(err);
        const id = packet && 'messageId' in packet ? packet.messageId : undefined;
        if (o.qos === 0 || id === undefined) return resolve(0);
        const rc = this.pubackRc.get(id) ?? 0;
        this.pubackRc.delete(id);
        resolve(rc);
      });
    });
  }

  private async reply(route: ReplyRoute, body: CommandReply): Promise<void> {
    await this.send('cmd/result', body, route);
  }

  private onMessage(topic: string, payload: Buffer, retained: boolean, responseTopic: string | undefined, correlationData: Buffer | undefined): void {
    if (this.stopping) return;
    if (this.keysTopic !== undefined && topic === this.keysTopic) {
      this.keySets?.handle(topic, payload);
      return;
    }
    const info = this.topics.parse(topic);
    if (!info) return;
    if (info.kind === 'assignment' || info.kind === 'override' || info.kind === 'alert') {
      void this.intake.handle(topic, info.kind, info.source, info.target, payload);
    } else if (info.kind === 'cmd') {
      const props = { ...(responseTopic !== undefined ? { responseTopic } : {}), ...(correlationData !== undefined ? { correlationData } : {}) };
      void this.commands.handle(topic, payload, props);
    } else if (!retained) {
      // The retained copy sent on subscribe is whatever preceded our birth, which replaces it.
      this.status.onOwnStatus(payload);
    }
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => { t = setTimeout(() => reject(new Error('timeout')), ms); })]);
  } finally {
    clearTimeout(t);
  }
}
