import { readFile } from 'node:fs/promises';
import type { IClientOptions } from 'mqtt';
import type { Config } from '../config/config.js';
import { encodeStatusBytes } from '../protocol/encode.js';
import { statusOffline } from '../protocol/outbound.js';

export const MAX_INBOUND_PACKET = 4 * 1024 * 1024;

/**
 * mqtt.js options for one connection attempt of the agent: MQTT 5, a persistent session, our own
 * reconnect (mqtt.js's is off), and a Last Will carrying this attempt's session number. Password
 * and TLS files are read on every attempt, so renewed credentials need no restart.
 */
export type MqttCredentials = Pick<Config['mqtt'], 'username' | 'password' | 'passwordFile' | 'caFile' | 'certFile' | 'keyFile'>;

/**
 * Username, password (from passwordFile, one line, or password) and TLS files as mqtt.js
 * options. Shared by the agent's link and the tools (doctor, signagectl), so a box's check
 * connects exactly as its agent does.
 */
export async function credentialOptions(m: MqttCredentials): Promise<IClientOptions> {
  const password = m.passwordFile !== undefined ? (await readFile(m.passwordFile, 'utf8')).replace(/\r?\n$/, '') : m.password;
  return {
    ...(m.username !== undefined ? { username: m.username } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(m.caFile !== undefined ? { ca: await readFile(m.caFile) } : {}),
    ...(m.certFile !== undefined ? { cert: await readFile(m.certFile) } : {}),
    ...(m.keyFile !== undefined ? { key: await readFile(m.keyFile) } : {}),
  };
}

export async function linkClientOptions(config: Config, willTopic: string, session: number, connectTimeoutMs: number): Promise<IClientOptions> {
  const m = config.mqtt;
  return {
    protocolVersion: 5,
    clientId: `signage-${config.deviceId}`,
    clean: false,
    // Inbound documents are capped at 256 KiB (rejected with an event up to this size); beyond
    // 4 MiB the broker must not send us the packet at all, so a hostile publish cannot make a
    // small screen buffer hundreds of megabytes.
    properties: { sessionExpiryInterval: m.sessionExpirySec, maximumPacketSize: MAX_INBOUND_PACKET },
    keepalive: m.keepaliveSec,
    reconnectPeriod: 0,
    connectTimeout: connectTimeoutMs,
    queueQoSZero: false,
    resubscribe: false,
    ...(await credentialOptions(m)),
    will: { topic: willTopic, payload: encodeStatusBytes(statusOffline(session)), qos: 1, retain: true },
  };
}

/**
 * Delay before reconnect attempt number `failures` (1 = first retry): exponential from minMs,
 * capped at maxMs, with "equal jitter" (half fixed, half random) so a fleet that lost the
 * broker together does not come back in lockstep.
 */
export function backoffDelay(failures: number, minMs: number, maxMs: number, random: () => number = Math.random): number {
  const cap = Math.min(maxMs, minMs * 2 ** Math.min(Math.max(0, failures - 1), 30));
  return Math.round(cap / 2 + random() * (cap / 2));
}
