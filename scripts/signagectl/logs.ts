import { gunzipSync } from 'node:zlib';
import { parseArgs } from 'node:util';
import { COMMAND_OPTIONS, COMMAND_SIGNING_HELP, Requester } from './cmd.js';
import { CONNECTION_HELP, CONNECTION_OPTIONS, CliError, type Io, connect, connectionFrom, parseDuration, targetTopics } from './conn.js';
import { commandExpiry, signerFrom } from './sign.js';
import { jsonLineForTerminal, termSafe } from './table.js';

// Issue 13 item 5: a screen's recent log lines without a visit. The agent keeps them in memory
// and answers the `logs` command a compressed page at a time; this asks page after page, and
// with --follow keeps asking from where it stopped.

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

export const LOGS_HELP = `Usage: signagectl logs --device ID [--since D] [--level L] [--lines N] [--follow] [--json]

The screen's recent log lines, from the agent's memory (nothing is kept on its SD card: after a
restart only the lines since are there). Oldest first.
  --since D     lines from D ago (15m, 2h) or from an ISO time with Z or an offset
  --level L     at least this level: trace, debug, info, warn, error, fatal (default: all kept)
  --lines N     the last N lines that match (default 1000)
  --follow      then keep printing new lines as they come (polls every --interval, default 2s)
  --for D       with --follow: stop after D
  --json        print each line as the agent's JSON, not as text
  --timeout S   how long to wait for each answer (default 15s)

${COMMAND_SIGNING_HELP}

${CONNECTION_HELP}`;

export const LOG_LEVEL_HELP = `Usage: signagectl log-level --device ID LEVEL [--for D]

Sets the screen's log level (trace, debug, info, warn, error, fatal) for a while: it goes back to
the level the agent started with by itself after D (default 30m, at most 24h), or at once when
LEVEL is that level.
  --timeout S   how long to wait for the answer (default 15s)

${COMMAND_SIGNING_HELP}

${CONNECTION_HELP}`;

interface Page {
  data: string;
  count: number;
  cursor: number;
  more: boolean;
  skipped: number;
}

function pageOf(result: unknown): Page {
  const p = result as Partial<Page> | undefined;
  if (!p || typeof p.data !== 'string' || typeof p.cursor !== 'number') throw new CliError('the answer is not a logs page', 1);
  return { data: p.data, count: p.count ?? 0, cursor: p.cursor, more: p.more === true, skipped: p.skipped ?? 0 };
}

/** A pino line as text: time, level, component, message, the other fields as JSON; every part made terminal-safe. */
export function formatLine(line: string, json: boolean): string {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return termSafe(line);
  }
  if (json) return jsonLineForTerminal(v);
  const { time, level, msg, component, ...rest } = v;
  const ts = typeof time === 'number' ? new Date(time).toISOString() : '?';
  const lv = (typeof level === 'number' ? LEVEL_NAMES[level] : undefined) ?? String(level);
  const extra = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : '';
  return termSafe(`${ts} ${lv.padEnd(5)} ${typeof component === 'string' ? `[${component}] ` : ''}${String(msg ?? '')}${extra}`);
}

export async function logsCommand(argv: string[], io: Io): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { ...CONNECTION_OPTIONS, ...COMMAND_OPTIONS, device: { type: 'string' }, since: { type: 'string' }, level: { type: 'string' }, lines: { type: 'string' }, follow: { type: 'boolean' }, interval: { type: 'string' }, for: { type: 'string' }, json: { type: 'boolean' }, timeout: { type: 'string' } },
  });
  if (values.help) return (io.out(LOGS_HELP), 0);
  const conn = connectionFrom(values);
  if (values.device === undefined) throw new CliError('--device ID is required');
  targetTopics(conn.prefix, { device: values.device });
  const device = values.device;
  const filter: Record<string, unknown> = {};
  if (values.level !== undefined) {
    if (!(LEVELS as readonly string[]).includes(values.level)) throw new CliError(`--level: one of ${LEVELS.join(', ')}`);
    filter.level = values.level;
  }
  if (values.since !== undefined) filter.since = sinceOf(values.since);
  const lines = values.lines === undefined ? 1000 : Number(values.lines);
  if (!Number.isInteger(lines) || lines < 1 || lines > 100_000) throw new CliError('--lines: a whole number from 1 to 100000');
  const timeoutMs = parseDuration(values.timeout ?? '15s', '--timeout');
  const intervalMs = parseDuration(values.interval ?? '2s', '--interval');
  const forMs = values.for === undefined ? undefined : parseDuration(values.for, '--for');
  if (forMs !== undefined && !values.follow) throw new CliError('--for goes with --follow');
  const signer = signerFrom(values);
  if (values.expires !== undefined) commandExpiry(values.expires, 0, Date.now());

  const client = await connect(conn);
  const req = new Requester(client, conn.prefix, { signer, expires: values.expires });
  const until = forMs === undefined ? Infinity : Date.now() + forMs;
  const stopped = (): boolean => io.signal?.aborted === true || Date.now() >= until;
  try {
    await req.start([device]);
    const ask = async (args: Record<string, unknown>): Promise<Page> => {
      const r = await req.send(device, 'logs', { ...filter, ...args }, timeoutMs);
      if (!r) throw new CliError(`no answer from ${device} within ${Math.round(timeoutMs / 1000)} s (is it online? signagectl watch --once)`, 1);
      if (!r.ok) throw new CliError(`${device}: logs failed: ${termSafe(r.error ?? 'no reason given')}`, 1);
      const p = pageOf(r.result);
      if (p.skipped > 0) io.err(`… ${p.skipped} lines were overwritten in the screen's memory before they were read`);
      if (p.count > 0) for (const l of gunzipSync(Buffer.from(p.data, 'base64')).toString('utf8').split('\n')) io.out(formatLine(l, values.json === true));
      return p;
    };
    // The last N lines, page by page: each later page asks from the cursor for what is left.
    let p = await ask({ lines });
    for (let left = lines - p.count; p.more && left > 0; left -= p.count) p = await ask({ cursor: p.cursor, lines: left });
    if (!values.follow) return 0;
    while (!stopped()) {
      if (!p.more) await pause(Math.min(intervalMs, until - Date.now()), io.signal);
      if (stopped()) break;
      p = await ask({ cursor: p.cursor });
    }
    return 0;
  } finally {
    req.stop();
    await client.endAsync().catch(() => undefined);
  }
}

export async function logLevelCommand(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...CONNECTION_OPTIONS, ...COMMAND_OPTIONS, device: { type: 'string' }, for: { type: 'string' }, timeout: { type: 'string' } } });
  if (values.help) return (io.out(LOG_LEVEL_HELP), 0);
  const conn = connectionFrom(values);
  if (values.device === undefined) throw new CliError('--device ID is required');
  targetTopics(conn.prefix, { device: values.device });
  const level = positionals[0];
  if (positionals.length !== 1 || !(LEVELS as readonly string[]).includes(level!)) throw new CliError(`give one LEVEL: ${LEVELS.join(', ')}`);
  const args: Record<string, unknown> = { level };
  if (values.for !== undefined) {
    const ms = parseDuration(values.for, '--for');
    if (!(ms >= 1000 && ms <= 86_400_000)) throw new CliError('--for: from 1s to 24h');
    args.expiresInSec = Math.round(ms / 1000);
  }
  const timeoutMs = parseDuration(values.timeout ?? '15s', '--timeout');
  const signer = signerFrom(values);
  if (values.expires !== undefined) commandExpiry(values.expires, 0, Date.now());
  const client = await connect(conn);
  const req = new Requester(client, conn.prefix, { signer, expires: values.expires });
  try {
    await req.start([values.device]);
    const r = await req.send(values.device, 'log-level', args, timeoutMs);
    if (!r) {
      io.err(`no answer from ${values.device} within ${Math.round(timeoutMs / 1000)} s (is it online? signagectl watch --once)`);
      return 1;
    }
    if (!r.ok) {
      io.err(`${values.device}: log-level failed: ${termSafe(r.error ?? 'no reason given')}`);
      return 1;
    }
    const s = r.result as { level?: unknown; base?: unknown; expiresAt?: unknown };
    io.out(termSafe(`${values.device}: log level ${String(s.level)}${typeof s.expiresAt === 'string' ? ` until ${s.expiresAt}, then ${String(s.base)}` : ''}`));
    return 0;
  } finally {
    req.stop();
    await client.endAsync().catch(() => undefined);
  }
}

/** `--since`: a duration ago, or an ISO time as given (the agent checks it carries an offset). */
function sinceOf(s: string): string {
  if (/^\d/.test(s) && /^\d+(\.\d+)?(ms|s|m|h|d)?$/.test(s)) return new Date(Date.now() - parseDuration(s, '--since')).toISOString();
  if (Number.isNaN(Date.parse(s)) || !/(Z|[+-]\d\d:?\d\d)$/.test(s)) throw new CliError(`--since: "${s}" is neither a duration (15m, 2h) nor an ISO time with Z or an offset`);
  return s;
}

function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted || ms <= 0) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
