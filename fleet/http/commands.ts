import { randomBytes, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import mqtt, { type MqttClient } from 'mqtt';
import { commandResultSchema, deviceTopic, encode, parseDeviceTopic, type CommandResult } from '../../agent/protocol/index.js';
import { pubFileBeside, sealEnvelope, signingKeyOf } from '../../agent/protocol/envelope.js';
import type { FleetConfig } from '../config.js';
import type { Logger } from '../log.js';

/**
 * PROTOCOL §7 commands from the NOC page, on an MQTT client of their own (the ingest's persistent
 * session must not carry them). As signagectl sends them: the request names the device's own
 * result topic as its MQTT 5 response topic (an ACL that lets a device publish only under
 * {p}/device/{id}/ still lets it answer), the request id as correlation data, `expiresAt` and
 * the message expiry at the wait's end, so a command for an offline screen never runs later.
 */
/** The key the page signs its commands with (§9), read once at start-up. */
export interface CommandSigner {
  key: KeyObject;
  keyId: string;
}

/** Reads `http.commandKeyFile` (PEM Ed25519, as signagectl keygen writes it); a bad file is a start-up error. */
export function readCommandSigner(file: string, keyId?: string): CommandSigner {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (e) {
    throw new Error(`http.commandKeyFile ${file}: not a private key: ${(e as Error).message}`);
  }
  const pub = pubFileBeside(file);
  const r = signingKeyOf(pem, pub !== undefined && existsSync(pub) ? readFileSync(pub, 'utf8') : undefined, keyId);
  if ('problem' in r) throw new Error(`http.commandKeyFile ${file}: ${r.problem}`);
  return r;
}

export class CommandClient {
  private client: MqttClient | undefined;
  private readonly subscribed = new Set<string>();
  private readonly waiting = new Map<string, (r: CommandResult) => void>();

  constructor(
    private readonly cfg: FleetConfig['mqtt'],
    private readonly password: string | undefined,
    private readonly log: Logger,
    private readonly signer?: CommandSigner,
  ) {}

  async start(): Promise<void> {
    const c = mqtt.connect(this.cfg.url, {
      protocolVersion: 5,
      clientId: `${this.cfg.clientId}-noc-${randomBytes(4).toString('hex')}`.slice(0, 64),
      clean: true,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      keepalive: this.cfg.keepaliveSec,
      ...(this.cfg.username ? { username: this.cfg.username } : {}),
      ...(this.password !== undefined ? { password: this.password } : {}),
    });
    c.on('error', (e) => this.log.warn({ err: e.message }, 'command client: mqtt error'));
    c.on('message', (topic, payload, packet) => this.answer(topic, payload, packet.properties?.correlationData));
    this.client = c;
  }

  private answer(topic: string, payload: Buffer, correlation: Buffer | undefined): void {
    if (parseDeviceTopic(this.cfg.topicPrefix, topic)?.kind !== 'cmd/result') return;
    let doc: unknown;
    try {
      doc = JSON.parse(payload.toString('utf8'));
    } catch {
      return;
    }
    const r = commandResultSchema.safeParse(doc);
    if (!r.success) return;
    const id = correlation?.toString('utf8') ?? r.data.id;
    if (id !== null) this.waiting.get(id)?.(r.data);
  }

  /** Sends `name` to the screen; undefined when no answer came within `timeoutMs`. */
  async send(deviceId: string, name: string, args: Record<string, unknown> | undefined, timeoutMs: number): Promise<CommandResult | undefined> {
    const c = this.client;
    if (!c?.connected) throw new Error('the NOC is not connected to the broker');
    const p = this.cfg.topicPrefix;
    const resultTopic = deviceTopic(p, deviceId, 'cmd/result');
    if (!this.subscribed.has(resultTopic)) {
      await c.subscribeAsync(resultTopic, { qos: 1 });
      this.subscribed.add(resultTopic);
    }
    const id = `noc-${randomBytes(8).toString('hex')}`;
    const now = Date.now();
    const answer = new Promise<CommandResult | undefined>((resolve) => {
      const timer = setTimeout(() => { this.waiting.delete(id); resolve(undefined); }, timeoutMs);
      this.waiting.set(id, (r) => { clearTimeout(timer); this.waiting.delete(id); resolve(r); });
    });
    const doc = { id, name, ...(args ? { args } : {}), expiresAt: new Date(now + timeoutMs).toISOString() };
    // Signed mode (§9): the envelope names the screen and when it was issued, so it cannot be
    // replayed onto another screen, and the short expiresAt bounds it in time.
    const text = this.signer ? sealEnvelope({ ...doc, target: `device/${deviceId}`, issuedAt: new Date(now).toISOString() }, this.signer.key, this.signer.keyId) : encode('cmd', doc);
    await c.publishAsync(deviceTopic(p, deviceId, 'cmd'), text, {
      qos: 1,
      properties: { responseTopic: resultTopic, correlationData: Buffer.from(id), messageExpiryInterval: Math.max(1, Math.ceil(timeoutMs / 1000)) },
    });
    this.log.info({ deviceId, name, id, ...(this.signer ? { keyId: this.signer.keyId } : {}) }, 'command sent');
    return answer;
  }

  async stop(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    for (const w of this.waiting.keys()) this.waiting.delete(w);
    if (c) await c.endAsync(true);
  }
}
