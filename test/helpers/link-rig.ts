import path from 'node:path';
import mqtt, { type IClientPublishOptions, type MqttClient } from 'mqtt';
import { parseConfig, type Config, type ConfigInput } from '../../agent/config/config.js';
import { SystemClock } from '../../agent/core/clock.js';
import { silentLogger } from '../../agent/core/log.js';
import type { AppliedVersions, DesiredMessage } from '../../agent/core/desired.js';
import { DesiredApplier } from '../../agent/desired/applier.js';
import { EventRecorder } from '../../agent/events/recorder.js';
import type { LinkHost } from '../../agent/link/host.js';
import { MqttLink, type LinkContext } from '../../agent/link/link.js';
import { SqliteStore } from '../../agent/store/sqlite-store.js';
import type { Store } from '../../agent/store/store.js';
import { startBroker, type Broker } from './mosquitto.js';
import { waitFor } from './wait.js';
import { tempDir as sharedTempDir } from './tmp.js';

// Shared set-up for test/link-*.test.ts: a private broker, a real SQLite store in a temp dir,
// an MqttLink, a fake LinkHost (the agent's side, with the real desired/ applier), and an
// observer client playing the NOC.

interface T {
  teardown(fn: () => unknown): void;
}

export const PREFIX = 'signage';
export const DEVICE = 'dev-1';

export class FakeHost implements LinkHost {
  desiredChanged = 0;
  played: string[] = [];
  restarts = 0;
  /** The real applier, made anew for each link bound (as an agent restart would). */
  desired: DesiredApplier | undefined;

  constructor(private readonly opts: { desiredRetryMs?: number } = {}) {}

  /** Wires the host to a link the way the agent does: its applier over the store, status through the link. */
  bind(link: MqttLink, store: Store, events: EventRecorder, config: Config): DesiredApplier {
    const desired = new DesiredApplier({
      store, events, clock: new SystemClock(), log: silentLogger(), groups: config.groups,
      ...(this.opts.desiredRetryMs !== undefined ? { retryMs: this.opts.desiredRetryMs } : {}),
      onChange: async () => {
        this.desiredChanged++;
        await link.publishStatus();
      },
    });
    this.desired = desired;
    // Serial with the offers: a document arriving first waits for the stored state to load.
    void desired.start();
    return desired;
  }
  offerDesired(m: DesiredMessage): Promise<unknown> {
    if (!this.desired) throw new Error('FakeHost not bound to a link');
    return this.desired.offer(m);
  }
  applied(): AppliedVersions {
    return this.desired?.applied() ?? { groups: {}, overrides: { groups: {} } };
  }
  async heartbeatFields(): Promise<Record<string, unknown>> {
    return { cpuTempC: 51.5, load1: 0.3, player: { state: 'playing', campaignId: 'c1', url: 'file:///x.mp4' }, clockSynced: true, compliance: [] };
  }
  async playNow(campaignId: string): Promise<unknown> {
    if (campaignId === 'missing') throw new Error('no such campaign: missing');
    this.played.push(campaignId);
    return { queued: campaignId };
  }
  async screenshot(): Promise<Buffer> {
    return Buffer.from('89504e470d0a1a0a0000', 'hex');
  }
  async restartPlayer(): Promise<void> {
    this.restarts++;
  }
  async report(date: string): Promise<unknown> {
    return { date, campaigns: [] };
  }
  updates: Array<Record<string, unknown>> = [];
  async update(args: Record<string, unknown>): Promise<unknown> {
    this.updates.push(args);
    return { accepted: true, version: args.version };
  }
  async status(): Promise<Record<string, unknown>> {
    return { state: 'fine' };
  }
}

export function tempDir(t: T, prefix = 'link-'): string {
  return sharedTempDir(t, prefix);
}

export function makeConfig(dir: string, url: string, extra: Partial<ConfigInput> = {}): Config {
  const { mqtt: m, ...rest } = extra;
  return parseConfig(
    {
      deviceId: DEVICE,
      groups: ['all', 'hoan-kiem'],
      heartbeatSec: 5,
      ...rest,
      mqtt: { url, keepaliveSec: 5, reconnectMinMs: 100, reconnectMaxMs: 1000, ...(m ?? {}) },
    },
    path.join(dir, 'config.json'),
  );
}

export async function openStore(t: T, dir: string): Promise<SqliteStore> {
  const store = new SqliteStore({ file: path.join(dir, 'agent.db'), log: silentLogger() });
  await store.start();
  t.teardown(() => store.stop().catch(() => undefined));
  return store;
}

/** A link over `store` with its own event recorder; a FakeHost is bound to it. No teardown (child processes). */
export function buildLink(config: Config, store: SqliteStore, host: LinkHost = new FakeHost(), tuning: LinkContext['tuning'] = {}, log = silentLogger()): { link: MqttLink; desired?: DesiredApplier } {
  const clock = new SystemClock();
  const events = new EventRecorder({ store, clock, log });
  const link = new MqttLink({ config, store, events, clock, log, agentVersion: '0.1.0-test', bootedAt: Date.now() - 5000, tuning });
  const desired = host instanceof FakeHost ? host.bind(link, store, events, config) : undefined;
  link.attach(host);
  return desired ? { link, desired } : { link };
}

export function makeLink(t: T, config: Config, store: SqliteStore, host: LinkHost = new FakeHost(), tuning: LinkContext['tuning'] = {}, log = silentLogger()): MqttLink {
  const { link, desired } = buildLink(config, store, host, tuning, log);
  t.teardown(async () => {
    await link.stop();
    await desired?.stop();
  });
  return link;
}

export interface Received {
  topic: string;
  payload: Buffer;
  retain: boolean;
  correlationData?: Buffer;
  json(): any;
}

/** The NOC side: an MQTT 5 client that records everything it receives. */
export class Observer {
  readonly got: Received[] = [];
  private constructor(readonly client: MqttClient) {
    client.on('message', (topic, payload, packet) => {
      const r: Received = { topic, payload, retain: packet.retain, json: () => JSON.parse(payload.toString()) };
      if (packet.properties?.correlationData) r.correlationData = packet.properties.correlationData;
      this.got.push(r);
    });
  }
  static async connect(t: T, url: string, subscribe: string[] = [`${PREFIX}/#`], opts: mqtt.IClientOptions = {}): Promise<Observer> {
    const client = await mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 100, ...opts });
    const o = new Observer(client);
    t.teardown(() => client.end(true));
    if (subscribe.length) await client.subscribeAsync(subscribe, { qos: 1 });
    return o;
  }
  on(topicSuffix: string): Received[] {
    return this.got.filter((m) => m.topic === `${PREFIX}/device/${DEVICE}/${topicSuffix}`);
  }
  async publish(topic: string, payload: string | Buffer, opts: IClientPublishOptions = {}): Promise<void> {
    await this.client.publishAsync(topic, payload, { qos: 1, ...opts });
  }
  /** Events of a type on the event topic. */
  events(type?: string): any[] {
    return this.on('event').map((m) => m.json()).filter((e) => type === undefined || e.type === type);
  }
}

export interface Rig {
  broker: Broker;
  dir: string;
  config: Config;
  store: SqliteStore;
  host: FakeHost;
  link: MqttLink;
  obs: Observer;
}

/** Broker + observer (subscribed to everything) + store + started link, connected. */
export async function rig(t: T, extra: Partial<ConfigInput> = {}, tuning: LinkContext['tuning'] = {}): Promise<Rig> {
  const broker = await startBroker(t);
  const dir = tempDir(t);
  const config = makeConfig(dir, broker.url, extra);
  const store = await openStore(t, dir);
  const obs = await Observer.connect(t, broker.url);
  const host = new FakeHost();
  const link = makeLink(t, config, store, host, tuning);
  await link.start();
  await waitFor('link connected with birth', () => obs.on('status').some((m) => m.json().online === true));
  return { broker, dir, config, store, host, link, obs };
}

export const topic = {
  device: (s: string): string => `${PREFIX}/device/${DEVICE}/${s}`,
  group: (g: string, s: string): string => `${PREFIX}/group/${g}/${s}`,
};

export const SHA = 'a'.repeat(64);

export function assignment(version: number, campaignIds: string[] = ['c1'], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    version,
    campaigns: campaignIds.map((id) => ({ id, media: { url: `https://cdn.example/${id}.mp4`, sha256: SHA }, timesPerDay: 10, windows: ['06:30-08:30'] })),
    ...extra,
  };
}

/** A TCP relay in front of the broker, so a test can cut the agent's connection while broker and NOC stay up. */
export async function tcpProxy(t: T, targetPort: number): Promise<{ port: number; url: string; cut(): void }> {
  const net = await import('node:net');
  const pairs = new Set<import('node:net').Socket>();
  const server = net.createServer((inbound) => {
    const outbound = net.connect({ port: targetPort, host: '127.0.0.1' });
    pairs.add(inbound);
    pairs.add(outbound);
    inbound.pipe(outbound).pipe(inbound);
    const close = (): void => {
      inbound.destroy();
      outbound.destroy();
      pairs.delete(inbound);
      pairs.delete(outbound);
    };
    inbound.on('error', close).on('close', close);
    outbound.on('error', close).on('close', close);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  t.teardown(() => {
    for (const s of pairs) s.destroy();
    server.close();
  });
  return { port, url: `mqtt://127.0.0.1:${port}`, cut: () => { for (const s of pairs) s.destroy(); } };
}
