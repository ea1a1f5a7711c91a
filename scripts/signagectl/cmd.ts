import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { MqttClient } from 'mqtt';
import { encode } from '../../agent/protocol/encode.js';
import type { CommandResult, Compliance } from '../../agent/protocol/outbound.js';
import { localDateSchema } from '../../agent/protocol/schemas.js';
import { deviceTopic, parseDeviceTopic } from '../../agent/protocol/topics.js';
import { CONNECTION_HELP, CONNECTION_OPTIONS, CliError, type Io, collect, connect, connectionFrom, parseDuration, targetTopics } from './conn.js';
import { csvLine, jsonForTerminal, renderTable, termSafe } from './table.js';
import { commandExpiry, SIGNING_HELP, SIGNING_OPTIONS, signerFrom, signFor, type Signer } from './sign.js';

/** A signed command lives 10 minutes unless --expires says otherwise (at most 24 h, PROTOCOL §9 v1.1). */
const SIGNED_COMMAND_MS = 10 * 60_000;
export const COMMAND_OPTIONS = { ...SIGNING_OPTIONS, expires: { type: 'string' } } as const;
export const COMMAND_SIGNING_HELP = `${SIGNING_HELP}
  --expires D      the command is void after D (10m, 2h; at most 24h); default: the --timeout
                   unsigned, 10 minutes signed. Also sent as the MQTT 5 message expiry, so a
                   command queued for an offline screen is dropped by the broker, not run later`;

// Commands (PROTOCOL §7). The request names the device's own result topic as its MQTT 5
// response topic, with the request id as correlation data: a broker ACL that lets a device
// publish only under {p}/device/{id}/ still lets it answer.

export const CMD_HELP = `Usage: signagectl cmd --device ID NAME [--args JSON] [--timeout S] [--out FILE]

Sends a command (PROTOCOL §7) and prints the device's answer. Exit 0 when it answered ok:true,
1 on ok:false or no answer. Names: ping, status, play-now (--args '{"campaignId":"C"}'),
screenshot (--out FILE writes the PNG), restart-player, report (--args '{"date":"YYYY-MM-DD"}').
  --timeout S   how long to wait for the answer (default 15s)

${COMMAND_SIGNING_HELP}

${CONNECTION_HELP}`;

export const SCREENSHOT_HELP = `Usage: signagectl screenshot --device ID --out FILE [--timeout S]

The current frame of the screen as a PNG (the screenshot command).

${COMMAND_SIGNING_HELP}

${CONNECTION_HELP}`;

export const REPORT_HELP = `Usage: signagectl report [--date YYYY-MM-DD] [--device ID | --all] [--csv] [--timeout S]

A day's compliance per device and campaign: sends the report command to the named device, or
(--all, the default) to every device whose retained status says online, and prints a table or CSV
(device,campaign,date,played,target,onTrack,status). Offline devices are listed, not asked.
  --date D      the devices' local day (default: today here)
  --timeout S   how long to wait for the answers (default 15s)

${COMMAND_SIGNING_HELP}

${CONNECTION_HELP}`;

/** Sends requests and matches answers by id on the devices' result topics. One subscription for many. */
export class Requester {
  // Also looked up by an answer's own id, which is null when the agent could not read the request.
  private readonly waiting = new Map<string | null, (r: CommandResult) => void>();
  private readonly onMessage = (topic: string, payload: Buffer, packet: { properties?: { correlationData?: Buffer } }): void => {
    if (parseDeviceTopic(this.prefix, topic)?.kind !== 'cmd/result') return;
    let r: CommandResult;
    try {
      r = JSON.parse(payload.toString('utf8')) as CommandResult;
    } catch {
      return;
    }
    const id = packet.properties?.correlationData?.toString('utf8') ?? r.id;
    const w = this.waiting.get(id) ?? this.waiting.get(r.id);
    if (w) w(r);
  };

  /** `signer`: every request goes out as a §9 envelope; `expires`: the --expires flag. */
  constructor(private readonly client: MqttClient, private readonly prefix: string, private readonly signing: { signer?: Signer | undefined; expires?: string | undefined } = {}) {
    client.on('message', this.onMessage);
  }

  async start(deviceIds: string[] | 'all'): Promise<void> {
    const topics = (deviceIds === 'all' ? ['+'] : deviceIds).map((d) => deviceTopic(this.prefix, d, 'cmd/result'));
    await this.client.subscribeAsync(topics, { qos: 1 });
  }

  stop(): void {
    this.client.removeListener('message', this.onMessage);
  }

  async send(deviceId: string, name: string, args: Record<string, unknown> | undefined, timeoutMs: number): Promise<CommandResult | undefined> {
    const id = `ctl-${randomBytes(8).toString('hex')}`;
    const answer = new Promise<CommandResult | undefined>((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.waiting.set(id, (r) => {
        clearTimeout(timer);
        this.waiting.delete(id);
        resolve(r);
      });
    });
    const now = Date.now();
    const { signer, expires } = this.signing;
    // Unsigned without --expires: as before, void once nobody waits for the answer.
    const expiresAt = !signer && expires === undefined ? now + timeoutMs : commandExpiry(expires, SIGNED_COMMAND_MS, now);
    const body = { id, name, ...(args ? { args } : {}), expiresAt: new Date(expiresAt).toISOString() };
    const text = signer ? signFor(body, signer, `device/${deviceId}`, now).text : encode('cmd', body);
    // The response topic is the device's own result topic, which a signed screen answers on anyway.
    await this.client.publishAsync(deviceTopic(this.prefix, deviceId, 'cmd'), text, {
      qos: 1,
      properties: {
        responseTopic: deviceTopic(this.prefix, deviceId, 'cmd/result'),
        correlationData: Buffer.from(id),
        messageExpiryInterval: Math.max(1, Math.ceil((expiresAt - now) / 1000)),
      },
    });
    return answer;
  }
}

export async function cmdCommand(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...CONNECTION_OPTIONS, ...COMMAND_OPTIONS, device: { type: 'string' }, args: { type: 'string' }, timeout: { type: 'string' }, out: { type: 'string' } } });
  if (values.help) return (io.out(CMD_HELP), 0);
  if (positionals.length !== 1) throw new CliError('give exactly one command NAME (see --help)');
  return runOne(values, positionals[0]!, io);
}

export async function screenshotCommand(argv: string[], io: Io): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...CONNECTION_OPTIONS, ...COMMAND_OPTIONS, device: { type: 'string' }, timeout: { type: 'string' }, out: { type: 'string' } } });
  if (values.help) return (io.out(SCREENSHOT_HELP), 0);
  if (values.out === undefined) throw new CliError('--out FILE is required');
  return runOne({ ...values, args: undefined }, 'screenshot', io);
}

async function runOne(
  values: Parameters<typeof connectionFrom>[0] & Parameters<typeof signerFrom>[0] & { device?: string | undefined; args?: string | undefined; timeout?: string | undefined; out?: string | undefined; expires?: string | undefined },
  name: string,
  io: Io,
): Promise<number> {
  const conn = connectionFrom(values);
  if (values.device === undefined) throw new CliError('--device ID is required');
  targetTopics(conn.prefix, { device: values.device });
  let args: Record<string, unknown> | undefined;
  if (values.args !== undefined) {
    try {
      args = JSON.parse(values.args) as Record<string, unknown>;
    } catch (e) {
      throw new CliError(`--args: not JSON: ${(e as Error).message}`);
    }
    if (!args || typeof args !== 'object' || Array.isArray(args)) throw new CliError('--args must be a JSON object');
  }
  const timeoutMs = parseDuration(values.timeout ?? '15s', '--timeout');
  const signer = signerFrom(values);
  if (values.expires !== undefined) commandExpiry(values.expires, 0, Date.now()); // a bad --expires is a usage error before connecting
  const client = await connect(conn);
  const req = new Requester(client, conn.prefix, { signer, expires: values.expires });
  try {
    await req.start([values.device]);
    const r = await req.send(values.device, name, args, timeoutMs);
    if (!r) {
      io.err(`no answer from ${values.device} within ${Math.round(timeoutMs / 1000)} s (is it online? signagectl watch --once)`);
      return 1;
    }
    const png = r.ok ? (r.result as { png?: unknown } | undefined)?.png : undefined;
    if (r.ok && values.out !== undefined && typeof png === 'string') {
      const bytes = Buffer.from(png, 'base64');
      writeFileSync(values.out, bytes);
      r.result = { ...(r.result as object), png: `<${bytes.length} bytes written to ${values.out}>` };
    }
    // The answer is the screen's words: nothing in it may drive the operator's terminal.
    io.out(jsonForTerminal(r));
    if (!r.ok) io.err(`${values.device}: ${name} failed: ${termSafe(r.error ?? 'no reason given')}`);
    return r.ok ? 0 : 1;
  } finally {
    req.stop();
    await client.endAsync().catch(() => undefined);
  }
}

// A row without `day` is taken as the asked date (the filter below), so the tool reads it as optional.
type ComplianceRow = Omit<Compliance, 'day'> & Partial<Pick<Compliance, 'day'>>;

export async function reportCommand(argv: string[], io: Io, today = localToday()): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...CONNECTION_OPTIONS, ...COMMAND_OPTIONS, device: { type: 'string' }, all: { type: 'boolean' }, date: { type: 'string' }, csv: { type: 'boolean' }, timeout: { type: 'string' }, wait: { type: 'string' } } });
  if (values.help) return (io.out(REPORT_HELP), 0);
  const conn = connectionFrom(values);
  if (values.device !== undefined && values.all) throw new CliError('give --device ID or --all, not both');
  if (values.device !== undefined) targetTopics(conn.prefix, { device: values.device });
  const date = values.date ?? today;
  if (!localDateSchema.safeParse(date).success) throw new CliError(`--date: "${date}" must be a real date YYYY-MM-DD`);
  const timeoutMs = parseDuration(values.timeout ?? '15s', '--timeout');
  const signer = signerFrom(values);
  if (values.expires !== undefined) commandExpiry(values.expires, 0, Date.now());

  const client = await connect(conn);
  const req = new Requester(client, conn.prefix, { signer, expires: values.expires });
  try {
    let online: string[];
    const offline: string[] = [];
    if (values.device !== undefined) {
      online = [values.device];
    } else {
      const statuses = await collect(client, [deviceTopic(conn.prefix, '+', 'status')], parseDuration(values.wait ?? '1s', '--wait'));
      online = [];
      for (const [topic, payload] of [...statuses].sort(([a], [b]) => a.localeCompare(b))) {
        const id = parseDeviceTopic(conn.prefix, topic)?.deviceId;
        if (id === undefined) continue;
        let up = false;
        try {
          up = (JSON.parse(payload.toString('utf8')) as { online?: unknown }).online === true;
        } catch {
          up = false;
        }
        (up ? online : offline).push(id);
      }
    }
    if (online.length === 0 && offline.length === 0) io.err(`no screen has a retained status on ${deviceTopic(conn.prefix, '+', 'status')}`);
    await req.start(values.device !== undefined ? online : 'all');
    const answers = await Promise.all(online.map(async (d) => [d, await req.send(d, 'report', { date }, timeoutMs)] as const));

    const rows: Array<{ device: string; c?: ComplianceRow; status: string }> = [];
    for (const [device, r] of answers) {
      if (!r) rows.push({ device, status: 'no answer' });
      else if (!r.ok) rows.push({ device, status: `error: ${r.error ?? '?'}` });
      else {
        const list = ((r.result as { compliance?: ComplianceRow[] } | undefined)?.compliance ?? []).filter((c) => (c.day ?? date) === date);
        if (list.length === 0) rows.push({ device, status: 'no campaigns' });
        for (const c of list) rows.push({ device, c, status: 'ok' });
      }
    }
    for (const device of offline) rows.push({ device, status: 'offline' });

    if (values.csv) {
      io.out(csvLine(['device', 'campaign', 'date', 'played', 'target', 'onTrack', 'status']));
      for (const r of rows) io.out(csvLine([r.device, r.c?.campaignId ?? '', date, r.c?.played ?? '', r.c?.target ?? '', r.c ? r.c.onTrack : '', r.status]));
    } else {
      const table = rows.map((r) => [
        r.device,
        r.c?.campaignId ?? '-',
        r.c ? String(r.c.played) : '-',
        r.c ? String(r.c.target) : '-',
        r.c ? (r.c.target > 0 ? `${Math.round((100 * r.c.played) / r.c.target)}%` : '-') : '-',
        r.c ? (r.c.onTrack ? 'yes' : 'NO') : '-',
        r.status,
      ]);
      io.out(`compliance on ${date}`);
      for (const l of renderTable(['DEVICE', 'CAMPAIGN', 'PLAYED', 'TARGET', 'DONE', 'ON TRACK', 'STATUS'], table)) io.out(l);
    }
    // Offline screens are reported, not an error of the report; a screen that is online and does
    // not answer is.
    return rows.some((r) => r.status === 'no answer' || r.status.startsWith('error')) ? 1 : 0;
  } finally {
    req.stop();
    await client.endAsync().catch(() => undefined);
  }
}

function localToday(): string {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}
