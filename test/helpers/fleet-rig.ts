import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient, type Packet } from 'mqtt';
import { deviceTopic, encode, playEvent, type PlayEvent } from '../../agent/protocol/index.js';
import type { Query } from '../../fleet/archive/db.js';
import { SERVE_NODE_FLAGS } from '../../fleet/cli/node-flags.js';
import { parseFleetConfig, type FleetConfig } from '../../fleet/config.js';
import { silentLogger } from '../../fleet/log.js';
import { FleetService } from '../../fleet/service.js';
import { onLines } from './agent-proc.js';
import type { Teardown } from './tmp.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const FLEET_BIN = path.join(root, 'dist/fleet/main.js');

/** A fleet.json for the test's broker and archive (clientId: one per ingest process). */
export function fleetConfig(dir: string, brokerUrl: string, clientId: string, extra: Partial<Record<string, unknown>> = {}): FleetConfig {
  return parseFleetConfig({ db: path.join(dir, 'archive.db'), mqtt: { url: brokerUrl, clientId, keepaliveSec: 5 }, ...extra }, dir);
}

/** signage-fleet serve in this process, silent, stopped with the test. */
export async function startFleet(t: Teardown, config: FleetConfig): Promise<FleetService> {
  const f = new FleetService(config, silentLogger());
  await f.start();
  t.teardown(() => f.stop());
  return f;
}

/** signage-fleet serve as a child process (dist/), for kill -9. */
export class FleetProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> = Promise.resolve(null);
  readonly lines: string[] = [];
  readonly configFile: string;

  /** `nodeFlags`: node's options for the process; by default the ones `serve` is run with (fleet/cli/node-flags.ts). */
  constructor(dir: string, config: Record<string, unknown>, name = 'fleet', private readonly nodeFlags: readonly string[] = SERVE_NODE_FLAGS) {
    this.configFile = path.join(dir, `${name}.json`);
    writeFileSync(this.configFile, JSON.stringify(config));
  }

  start(): void {
    const c = spawn(process.execPath, [...this.nodeFlags, FLEET_BIN, 'serve', '--config', this.configFile], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'info' } });
    this.child = c;
    onLines(c.stdout!, (line) => { if (line) this.lines.push(line); });
    c.stderr!.on('data', (d: Buffer) => this.lines.push(`stderr: ${d.toString()}`));
    this.exited = new Promise((r) => c.once('exit', (code) => r(code)));
  }

  logged(msg: string): boolean {
    return this.lines.some((l) => l.includes(`"msg":"${msg}"`));
  }

  async kill9(): Promise<void> {
    this.child?.kill('SIGKILL');
    await this.exited;
  }

  async stop(): Promise<number | null> {
    this.child?.kill('SIGTERM');
    return this.exited;
  }

  register(t: Teardown): this {
    t.teardown(async () => {
      if (this.child && this.child.exitCode === null && this.child.signalCode === null) await this.kill9();
    });
    return this;
  }
}

/** A screen's play events as the agent builds them (protocol builders), seq by seq. */
export function plays(deviceId: string, storeId: string, seqs: number[], o: { campaignId?: string; day?: string; target?: number; outcome?: PlayEvent['outcome'] } = {}): PlayEvent[] {
  const day = o.day ?? '2026-12-05';
  const base = Date.parse(`${day}T03:00:00Z`);
  return seqs.map((seq) => playEvent({
    deviceId, storeId, seq, campaignId: o.campaignId ?? 'spot', mediaSha256: 'a'.repeat(64), day,
    scheduledAt: base + seq * 60_000, startedAt: base + seq * 60_000 + 20, endedAt: base + seq * 60_000 + 30_020, durationMs: 30_000,
    outcome: o.outcome ?? 'completed', inWindow: true, played: seq, target: o.target ?? 10, display: 'connected', clockSynced: true,
  }));
}

/** A publisher that speaks for screens (QoS 1 plays, as the agent's outbox sends them). */
export async function screenClient(t: Teardown, url: string): Promise<MqttClient> {
  const c = await mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 200 });
  t.teardown(() => c.endAsync());
  return c;
}

export async function publishPlays(c: MqttClient, evs: readonly PlayEvent[], prefix = 'signage'): Promise<void> {
  await Promise.all(evs.map((e) => c.publishAsync(deviceTopic(prefix, e.deviceId, 'play'), encode('play', e), { qos: 1 })));
}

export const count = async (q: Query, sql: string, params: (string | number)[] = []): Promise<number> =>
  (await q.get<{ n: number }>(sql, params))?.n ?? 0;

/**
 * Until the ingest's shared subscription is in place: a probe play's PUBACK then carries 0 instead
 * of 0x10 "no matching subscribers". mqtt.js resolves a publish without its PUBACK (and takes 0x10
 * for success), so the reason code is read off the wire; the delivered probe counts as one bad
 * message. (It once compared publishAsync's undefined with 16 and returned at once: a test that
 * published right after could lose its first few hundred plays to a subscription not yet made.)
 */
export async function untilSubscribed(c: MqttClient, prefix = 'signage'): Promise<void> {
  const { waitFor } = await import('./wait.js');
  const topic = deviceTopic(prefix, 'probe', 'play');
  const probes = new Set<number>();
  let code: number | undefined;
  const sent = (p: Packet): void => {
    if (p.cmd === 'publish' && p.topic === topic && p.messageId !== undefined) probes.add(p.messageId);
  };
  const got = (p: Packet): void => {
    if (p.cmd === 'puback' && p.messageId !== undefined && probes.delete(p.messageId)) code = p.reasonCode ?? 0;
  };
  c.on('packetsend', sent);
  c.on('packetreceive', got);
  try {
    await waitFor('ingest subscribed', async () => {
      code = undefined;
      await c.publishAsync(topic, 'probe', { qos: 1 });
      return code === 0;
    });
  } finally {
    c.off('packetsend', sent);
    c.off('packetreceive', got);
  }
}

/** A broker, a temp dir, an in-process ingest subscribed, and a screen-side publisher. */
export async function fleetStage(t: Teardown & { teardown(fn: () => unknown): void }, clientId: string, extra: Partial<Record<string, unknown>> = {}) {
  const { startBroker } = await import('./mosquitto.js');
  const { tempDir } = await import('./tmp.js');
  const { waitFor } = await import('./wait.js');
  const broker = await startBroker(t);
  const dir = tempDir(t, 'fleet-');
  const fleet = await startFleet(t, fleetConfig(dir, broker.url, clientId, extra));
  await waitFor('ingest connected', () => fleet.ingest.connected);
  const screen = await screenClient(t, broker.url);
  await untilSubscribed(screen);
  return { broker, dir, fleet, screen };
}
