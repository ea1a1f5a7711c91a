import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { main } from '../../scripts/signagectl/cli.js';
import { freePort, waitForPort } from './ports.js';
import type { Teardown } from './tmp.js';

// The shipped provisioning/broker/mosquitto.conf, run as is on free 127.0.0.1 ports with its
// state folder made by `signagectl broker` in a temp dir. Only the ports, the state path and
// the test basics (no persistence, log to stderr) differ from production.

const SHIPPED = path.resolve(import.meta.dirname, '..', '..', 'provisioning', 'broker');

export interface ProdBroker {
  /** TLS + client certificate (production 8883). */
  certUrl: string;
  /** TLS + per-device password (production 8884). */
  passUrl: string;
  /** Loopback listener of the NOC tools (production 8885). */
  nocUrl: string;
  pid: number;
  dir: string;
  log(): string;
}

export interface ProdBrokerOptions {
  /** Drops `use_username_as_clientid` (the control case: what happens without it). */
  unboundClientIds?: boolean;
  /** Which shipped file: mosquitto.conf (password file, ACL, CRL) or mosquitto-dynsec.conf. */
  conf?: 'mosquitto.conf' | 'mosquitto-dynsec.conf';
  /** Started as root, let mosquitto drop to its own user as in production (no `user root`). */
  asBrokerUser?: boolean;
}

export async function startProdBroker(t: Teardown, dir: string, opts: ProdBrokerOptions = {}): Promise<ProdBroker> {
  const [cert, pass, noc] = [await freePort(), await freePort(), await freePort()];
  let conf = readFileSync(path.join(SHIPPED, opts.conf ?? 'mosquitto.conf'), 'utf8')
    .replaceAll('/etc/mosquitto/signage', dir)
    .replaceAll('/var/lib/mosquitto/dynamic-security.json', path.join(dir, 'dynamic-security.json'))
    .replace(/^listener 8883$/m, `listener ${cert} 127.0.0.1`)
    .replace(/^listener 8884$/m, `listener ${pass} 127.0.0.1`)
    .replace(/^listener 8885 127\.0\.0\.1$/m, `listener ${noc} 127.0.0.1`);
  if (opts.unboundClientIds) conf = conf.replace(/^use_username_as_clientid true$/gm, '');
  const basics = ['persistence false', 'log_dest stderr', 'log_type error', 'log_type warning', 'log_type notice', ...(process.getuid?.() === 0 && !opts.asBrokerUser ? ['user root'] : [])];
  const file = path.join(dir, 'mosquitto.conf');
  writeFileSync(file, basics.join('\n') + '\n' + conf);
  let log = '';
  const child: ChildProcess = spawn('mosquitto', ['-c', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr?.on('data', (d: Buffer) => { log = (log + d.toString()).slice(-20000); });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  });
  const died = exited.then(() => { throw new Error(`mosquitto exited on start: ${log}`); });
  const ports = [cert, pass, noc].filter((p) => conf.includes(`listener ${p} `));
  await Promise.race([Promise.all(ports.map((p) => waitForPort(p))), died]);
  return { certUrl: `mqtts://127.0.0.1:${cert}`, passUrl: `mqtts://127.0.0.1:${pass}`, nocUrl: `mqtt://127.0.0.1:${noc}`, pid: child.pid!, dir, log: () => log };
}

/** Runs `signagectl broker ...` in-process; throws with its output on a non-zero exit. */
export async function brokerTool(dir: string, ...args: string[]): Promise<string[]> {
  const out: string[] = [];
  const code = await main(['broker', ...args, '--dir', dir], { out: (l) => out.push(l), err: (l) => out.push(l), isTTY: false });
  if (code !== 0) throw new Error(`signagectl broker ${args.join(' ')} exited ${code}: ${out.join('\n')}`);
  return out;
}

/** What `signagectl broker` issued to NAME, as mqtt.js options: a password or a certificate. */
export function issued(dir: string, name: string): IClientOptions {
  const f = (n: string): string => path.join(dir, 'issued', name, n);
  const read = (n: string): string | undefined => {
    try {
      return readFileSync(f(n), 'utf8');
    } catch {
      return undefined;
    }
  };
  const password = read('mqtt.pass')?.trim();
  const cert = read('client.crt');
  return {
    ...(password !== undefined ? { username: name, password } : {}),
    ...(cert !== undefined ? { cert, key: read('client.key') } : {}),
  };
}

/** An MQTT 5 client that does not reconnect by itself; ended with the test. */
export async function connect(t: Teardown, url: string, opts: IClientOptions): Promise<MqttClient> {
  const c = await mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000, ...opts });
  t.teardown(() => c.endAsync(true));
  return c;
}

/** Connects once; resolves to the error when the broker refuses (or the TLS handshake fails). */
export async function refused(url: string, opts: IClientOptions): Promise<Error | undefined> {
  try {
    const c = await mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000, ...opts });
    await c.endAsync(true);
    return undefined;
  } catch (e) {
    return e as Error;
  }
}
