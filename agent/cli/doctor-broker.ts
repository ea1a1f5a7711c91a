import { brokerFix, connectOnce, toolClientOptions } from './broker.js';
import type { CheckResult, DoctorContext } from './doctor-check.js';

// doctor's two broker lines: can this box reach the broker as the agent would, and would what it
// sends cross the network in plain text.

export async function checkBroker(ctx: DoctorContext): Promise<CheckResult> {
  const m = ctx.config.mqtt;
  const timeout = ctx.brokerTimeoutMs ?? 5000;
  let client;
  try {
    const opts = await toolClientOptions(m, `${ctx.config.deviceId}-doctor`, timeout);
    client = await connectOnce(m.url, opts, timeout);
  } catch (e) {
    const msg = (e as Error).message || String(e);
    return { name: 'broker', level: 'fail', detail: `cannot connect to ${m.url}: ${msg}`, fix: brokerFix(msg) };
  }
  await client.endAsync().catch(() => undefined);
  const tls = /^(mqtts|wss|ssl):/.test(m.url) ? ' over TLS' : '';
  return { name: 'broker', level: 'ok', detail: `connected to ${m.url}${tls}${m.username ? ` as ${m.username}` : ''}` };
}

/**
 * Issue 10 item 7: on plain MQTT anyone on the path reads the password and every message, and
 * can forge desired state and commands for this screen. A line only when that is the case (it
 * does not need the broker to answer: a box set up that way is worth a warning before it is).
 */
export function checkTransport(ctx: DoctorContext): CheckResult[] {
  const url = ctx.config.mqtt.url;
  if (/^(mqtts|wss|ssl):/.test(url) || isLoopbackUrl(url)) return [];
  return [{ name: 'broker transport', level: 'warn', detail: `${url} is plain text to a host that is not this box`, fix: 'use mqtts:// (port 8883: provisioning/broker/, docs/security.md) or a VPN; plain mqtt:// only to 127.0.0.1' }];
}

/** The broker is this box itself (127.0.0.0/8, ::1, localhost, IPv4-mapped 127/8): plain text never leaves it. */
export function isLoopbackUrl(url: string): boolean {
  let host: string;
  try {
    host = new URL(url).hostname.replace(/^\[|\]$/g, '').toLowerCase();
  } catch {
    return false;
  }
  return host === 'localhost' || host.endsWith('.localhost') || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host) || /^::ffff:(127\.|7f[0-9a-f]{2}:)/.test(host);
}
