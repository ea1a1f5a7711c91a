// `signage-fleet simulate-fleet`: options, the run, the summary. Loaded by fleet/main.ts only for
// this subcommand (a dynamic import), so `serve` never loads the agent's parts.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { SystemClock } from '../../agent/core/clock.js';
import type { Logger } from '../../agent/core/log.js';
import { UsageError } from '../cli/usage.js';
import { FleetSimulator, type FleetSimOptions, type FleetSimResult } from './fleet-sim.js';

export interface SimIo {
  out(line: string): void;
  log: Logger;
  /** Resident set size now and at its peak, bytes (the process's, read by main). */
  rss(): { now: number; peak: number };
  /** Aborted by SIGINT/SIGTERM: stop early, still drain and report. */
  signal: AbortSignal;
}

/** `90`, `90s`, `5m`, `1h` → ms. */
export function parseDuration(s: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s);
  if (!m) return undefined;
  const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return Math.round(Number(m[1]) * mult);
}

type Parsed = Omit<FleetSimOptions, 'clock' | 'log' | 'agentVersion' | 'dataDir'> & { dataDir?: string; report?: string; drainMs: number };

export function parseSimArgs(args: string[]): Parsed {
  let values: Record<string, string | undefined>;
  try {
    ({ values } = parseArgs({
      args, strict: true,
      options: Object.fromEntries(['devices', 'broker', 'heartbeat-sec', 'plays-per-hour', 'duration', 'spot-sec', 'prefix', 'id-prefix', 'timezone',
        'session-expiry-sec', 'batch', 'data-dir', 'report', 'drain'].map((k) => [k, { type: 'string' as const }])),
    }) as { values: Record<string, string | undefined> });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const problems: string[] = [];
  const int = (k: string, dflt: number, min: number, max: number): number => {
    const v = values[k] === undefined ? dflt : Number(values[k]);
    if (!Number.isInteger(v) || v < min || v > max) problems.push(`--${k} must be a whole number from ${min} to ${max}`);
    return v;
  };
  const devices = int('devices', NaN, 1, 100_000);
  if (!values.broker || !/^(mqtts?|wss?|tcp):\/\/./.test(values.broker)) problems.push('--broker mqtt://HOST:PORT is required');
  const heartbeatSec = int('heartbeat-sec', 10, 5, 3600);
  const spotSec = int('spot-sec', 15, 1, 3600);
  const playsPerHour = Number(values['plays-per-hour'] ?? 60);
  if (!(playsPerHour > 0) || playsPerHour * spotSec > 1800) problems.push(`--plays-per-hour must be above 0 and leave the screen idle half the time (at most ${Math.floor(1800 / spotSec)} with --spot-sec ${spotSec})`);
  const durationMs = parseDuration(values.duration ?? '5m');
  if (durationMs === undefined || durationMs < 1000) problems.push('--duration must be like 90s, 5m or 1h');
  const drainMs = parseDuration(values.drain ?? '30s');
  if (drainMs === undefined) problems.push('--drain must be like 30s');
  const timezone = values.timezone ?? 'Asia/Ho_Chi_Minh';
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
  } catch {
    problems.push(`--timezone ${timezone} is not an IANA timezone`);
  }
  const idPrefix = values['id-prefix'] ?? 'sim-';
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,40}$/.test(idPrefix)) problems.push('--id-prefix must be letters, digits, . _ - (a device id begins with it)');
  const sessionExpirySec = int('session-expiry-sec', 0, 0, 30 * 86400);
  const batch = int('batch', 50, 1, 10_000);
  if (problems.length > 0) throw new UsageError(problems.join('; '));
  return {
    devices, brokerUrl: values.broker!, heartbeatSec, playsPerHour, durationMs: durationMs!, spotSec, prefix: values.prefix ?? 'signage', idPrefix,
    timezone, sessionExpirySec, batch, drainMs: drainMs!,
    ...(values['data-dir'] ? { dataDir: values['data-dir'] } : {}), ...(values.report ? { report: values.report } : {}),
  };
}

/** Runs the fleet for its duration (or until aborted) and prints what it sent. */
export async function runSimulateFleet(args: string[], io: SimIo, agentVersion: string): Promise<FleetSimResult> {
  const p = parseSimArgs(args);
  const dataDir = p.dataDir ?? mkdtempSync(`${os.tmpdir()}/signage-fleet-sim-`);
  const sim = new FleetSimulator({ ...p, dataDir, clock: new SystemClock(), log: io.log, agentVersion });
  const t0 = Date.now();
  let result: FleetSimResult;
  try {
    await sim.start().catch(async (e: unknown) => {
      await sim.stop(0).catch(() => undefined);
      throw e;
    });
    const rssStarted = io.rss().now;
    io.out(`${p.devices} virtual screens on ${p.brokerUrl} (started in ${((Date.now() - t0) / 1000).toFixed(1)} s, RSS ${mb(rssStarted)}): heartbeats every ${p.heartbeatSec} s, ${p.playsPerHour} plays/h each, ${p.spotSec} s spots, for ${p.durationMs / 1000} s`);
    // Until --duration or a Ctrl-C. Node's abortable timer also ends at once for a signal aborted
    // already, by a Ctrl-C while the screens were starting (a bare 'abort' listener missed that one).
    await sleep(p.durationMs, undefined, { signal: io.signal }).catch((e: unknown) => {
      if ((e as Error).name !== 'AbortError') throw e;
    });
    const rssRun = io.rss();
    result = await sim.stop(p.drainMs);
    io.out(`plays: ${result.plays} recorded, ${result.playsSent} acknowledged by the broker, ${result.playsUnsent} left in outboxes; heartbeats: ${result.heartbeats}`);
    io.out(`simulator RSS: ${mb(rssRun.now)} at the end of the run (${mb(rssRun.now / p.devices)} a screen), peak ${mb(rssRun.peak)}`);
    if (result.windowClipped) io.out('note: the run passed local midnight; screens stopped playing at 24:00 (choose another --timezone)');
    if (p.report) {
      writeFileSync(p.report, JSON.stringify({
        devices: result.devices, plays: result.plays, playsSent: result.playsSent, playsUnsent: result.playsUnsent, heartbeats: result.heartbeats,
        rssBytes: rssRun.now, peakRssBytes: rssRun.peak, sent: Object.fromEntries(result.sent),
      }));
    }
  } finally {
    if (!p.dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
  return result;
}

const mb = (b: number): string => `${(b / 1048576).toFixed(b < 10 * 1048576 ? 2 : 0)} MB`;
