import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { MqttClient } from 'mqtt';
import { brokerFix, connectOnce, toolClientOptions, type MqttSettings } from '../../agent/cli/broker.js';
import { ConfigError, parseConfig } from '../../agent/config/config.js';
import { ID_RE } from '../../agent/protocol/schemas.js';
import { targetTopic, type GroupKind } from '../../agent/protocol/topics.js';

// The broker connection of every signagectl command: the `mqtt` section of a config file in
// the agent's own style (an agent's config works as is), or --url and friends.

export interface Io {
  out(line: string): void;
  err(line: string): void;
  /** stdout is a terminal: `watch` redraws in place and colours stale rows. */
  isTTY: boolean;
  /** Raw writes (the live table redraw). */
  write?(s: string): void;
  /** Ends a command that runs until stopped (`logs --follow`). */
  signal?: AbortSignal;
}

export class CliError extends Error {
  constructor(message: string, readonly exitCode = 2) {
    super(message);
  }
}

export const CONNECTION_HELP = `Broker connection (every command):
  --config FILE        a JSON file with an "mqtt" object as in the agent's config (url, username,
                       passwordFile, caFile, certFile, keyFile, topicPrefix); an agent config works
  --url URL            mqtt://, mqtts://, ws:// or wss:// (instead of, or overriding, the file's)
  --username NAME      --password-file FILE    --prefix PREFIX (topic prefix, default signage)
  --connect-timeout S  seconds to wait for the broker (default 10)`;

export const CONNECTION_OPTIONS = {
  config: { type: 'string' },
  url: { type: 'string' },
  username: { type: 'string' },
  'password-file': { type: 'string' },
  prefix: { type: 'string' },
  'connect-timeout': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface ConnectionFlags {
  config?: string | undefined;
  url?: string | undefined;
  username?: string | undefined;
  'password-file'?: string | undefined;
  prefix?: string | undefined;
  'connect-timeout'?: string | undefined;
}

export interface Connection {
  settings: MqttSettings;
  prefix: string;
  timeoutMs: number;
}

/** Validates the connection flags with the agent's own config parser (every problem listed). */
export function connectionFrom(flags: ConnectionFlags): Connection {
  let mqttRaw: Record<string, unknown> = {};
  let base = path.resolve('signagectl.json');
  if (flags.config !== undefined) {
    base = path.resolve(flags.config);
    let doc: unknown;
    try {
      doc = JSON.parse(readFileSync(flags.config, 'utf8'));
    } catch (e) {
      throw new CliError(`--config ${flags.config}: ${(e as Error).message}`);
    }
    const m = (doc as { mqtt?: unknown } | null)?.mqtt;
    if (!m || typeof m !== 'object') throw new CliError(`--config ${flags.config}: no "mqtt" object`);
    mqttRaw = { ...(m as Record<string, unknown>) };
  }
  if (flags.url !== undefined) mqttRaw.url = flags.url;
  if (flags.username !== undefined) mqttRaw.username = flags.username;
  if (flags['password-file'] !== undefined) mqttRaw.passwordFile = path.resolve(flags['password-file']);
  if (flags.prefix !== undefined) mqttRaw.topicPrefix = flags.prefix;
  if (mqttRaw.url === undefined) throw new CliError('no broker: give --config FILE or --url URL');
  let m;
  try {
    // deviceId is required by the agent's schema and meaningless here.
    m = parseConfig({ deviceId: 'signagectl', mqtt: mqttRaw }, base).mqtt;
  } catch (e) {
    if (e instanceof ConfigError) throw new CliError(e.problems.join('\n'));
    throw e;
  }
  const timeoutSec = flags['connect-timeout'] === undefined ? 10 : Number(flags['connect-timeout']);
  if (!Number.isFinite(timeoutSec) || timeoutSec <= 0) throw new CliError('--connect-timeout: seconds, > 0');
  return { settings: m, prefix: m.topicPrefix, timeoutMs: timeoutSec * 1000 };
}

export async function connect(c: Connection): Promise<MqttClient> {
  try {
    const opts = await toolClientOptions(c.settings, 'signagectl', c.timeoutMs);
    return await connectOnce(c.settings.url, opts, c.timeoutMs);
  } catch (e) {
    const msg = (e as Error).message;
    throw new CliError(`cannot connect to ${c.settings.url}: ${msg} (${brokerFix(msg)})`, 1);
  }
}

/**
 * Subscribes and collects what arrives within `waitMs` after the SUBACK: the retained messages
 * (mosquitto sends them right after the SUBACK) and anything live.
 */
export async function collect(client: MqttClient, topics: string[], waitMs: number, onMessage?: (topic: string, payload: Buffer) => void): Promise<Map<string, Buffer>> {
  const got = new Map<string, Buffer>();
  const handler = (topic: string, payload: Buffer): void => {
    got.set(topic, payload);
    onMessage?.(topic, payload);
  };
  client.on('message', handler);
  try {
    await client.subscribeAsync(topics, { qos: 1 });
    await new Promise((r) => setTimeout(r, waitMs));
    await client.unsubscribeAsync(topics).catch(() => undefined);
  } finally {
    client.removeListener('message', handler);
  }
  return got;
}

/** `--device ID` or `--group G` → its document topics, validated. */
export function targetTopics(prefix: string, flags: { device?: string | undefined; group?: string | undefined }): { topic(kind: GroupKind): string; label: string; target: string } {
  if ((flags.device === undefined) === (flags.group === undefined)) throw new CliError('give exactly one of --device ID or --group G');
  const [kind, id] = flags.device !== undefined ? ['device', flags.device] as const : ['group', flags.group!] as const;
  if (!ID_RE.test(id)) throw new CliError(`--${kind}: "${id}" must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`);
  const target = kind === 'device' ? { device: id } : { group: id };
  // `target` is the §9 name of the same pair, which a signed document must carry.
  return { topic: (k) => targetTopic(prefix, target, k), label: `${kind} ${id}`, target: `${kind}/${id}` };
}

/** A duration like 5s, 500ms, 2m, 6h, 1d (bare numbers are seconds) in ms. */
export function parseDuration(s: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(s.trim());
  if (!m) throw new CliError(`${flag}: "${s}" is not a duration (e.g. 5s, 2m, 6h, 1d)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 's') as 'ms'];
  return Number(m[1]) * unit;
}

/** A JSON object from a file named on the command line, or a usage error naming the file. */
export function readJsonObject(file: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CliError(`${file}: ${(e as Error).message}`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new CliError(`${file}: must be a JSON object`);
  return doc as Record<string, unknown>;
}
