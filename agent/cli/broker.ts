import { randomBytes } from 'node:crypto';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Config } from '../config/config.js';
import { credentialOptions } from '../link/connect-options.js';

// Connection options for the tools around the agent (doctor, signagectl): the same credentials
// and TLS files as the agent's link (credentialOptions, shared with agent/link), but a throwaway client
// id and a clean session, so a check never takes over the running agent's session or Will.

export type MqttSettings = Pick<Config['mqtt'], 'url' | 'username' | 'password' | 'passwordFile' | 'caFile' | 'certFile' | 'keyFile'>;

export async function toolClientOptions(m: MqttSettings, idPrefix: string, connectTimeoutMs: number): Promise<IClientOptions> {
  return {
    protocolVersion: 5,
    clientId: `${idPrefix}-${randomBytes(4).toString('hex')}`,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: connectTimeoutMs,
    keepalive: 30,
    ...(await credentialOptions(m)),
  };
}

/** Connects once (no reconnect); rejects with the broker's or the socket's reason, or on timeout. */
export function connectOnce(url: string, opts: IClientOptions, timeoutMs: number): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, { ...opts, reconnectPeriod: 0 });
    let settled = false;
    const finish = (err?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        client.end(true);
        reject(err);
      } else resolve(client);
    };
    const timer = setTimeout(() => finish(new Error(`no answer from ${url} within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
    client.once('connect', () => finish());
    client.once('error', (e) => finish(e));
    client.once('close', () => finish(new Error(`connection to ${url} closed before CONNACK`)));
  });
}

/** A fix for the usual ways a connection fails, phrased for the person at the box. */
export function brokerFix(message: string): string {
  if (/ECONNREFUSED/.test(message)) return 'nothing listens there: check mqtt.url (host and port) and the broker';
  if (/ENOTFOUND|EAI_AGAIN/.test(message)) return 'the host name does not resolve: check mqtt.url and DNS';
  if (/EHOSTUNREACH|ENETUNREACH|no answer|ETIMEDOUT/.test(message)) return 'no route or no answer: check the network, firewall and mqtt.url port';
  if (/[Nn]ot authorized|[Bb]ad (user ?name|password)|[Aa]uth/.test(message)) return 'the broker refused the credentials: check mqtt.username and the password file';
  if (/certificate|CERT|SSL|TLS|self.signed/i.test(message)) return 'TLS failed: check mqtt.caFile/certFile/keyFile and that the clock is right';
  if (/ENOENT|EACCES/.test(message)) return 'a credentials file is missing or unreadable: check the mqtt.*File paths and modes';
  return 'check mqtt.url, the credentials and the network';
}
