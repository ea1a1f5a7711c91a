import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import mqtt, { type MqttClient } from 'mqtt';
import { AgentProcess, sha256File } from '../helpers/agent-proc.js';
import { makeClip } from '../helpers/clips.js';
import { startBroker, type Broker } from '../helpers/mosquitto.js';
import type { Teardown } from '../helpers/tmp.js';
import type { PlayMsg } from '../helpers/e2e.js';
import { sleep, waitedFor } from '../helpers/wait.js';
export { sleep };

// The common stage of the chaos scenarios: a real broker, a NOC-style subscriber (never `#`),
// clips copied into the scenario's own dir (a scenario may damage or remove them), the agent as
// a child process with its mpv writing a log file, and the figures/checks a scenario returns.

const run = promisify(execFile);


/** Teardown for the CLI runner (tap gives its own `t`): runs the registered steps backwards, each on its own. */
export class Stage implements Teardown {
  private readonly fns: Array<() => unknown> = [];
  teardown(fn: () => unknown): void {
    this.fns.push(fn);
  }
  async close(): Promise<void> {
    for (const fn of this.fns.reverse()) {
      try {
        await fn();
      } catch (e) {
        process.stderr.write(`chaos teardown: ${(e as Error).message}\n`);
      }
    }
    this.fns.length = 0;
  }
}

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface Outcome {
  scenario: string;
  figures: Array<[string, string]>;
  checks: Check[];
}

export class Report {
  readonly figures: Array<[string, string]> = [];
  readonly checks: Check[] = [];
  constructor(readonly scenario: string) {}
  fig(name: string, value: unknown): void {
    this.figures.push([name, typeof value === 'string' ? value : JSON.stringify(value)]);
  }
  check(name: string, ok: boolean, detail: string): void {
    this.checks.push({ name, ok, detail });
  }
  outcome(): Outcome {
    return { scenario: this.scenario, figures: this.figures, checks: this.checks };
  }
}

export function formatOutcome(o: Outcome): string {
  const w = Math.max(...o.figures.map(([k]) => k.length), 8);
  const lines = [`== ${o.scenario} ==`];
  for (const [k, v] of o.figures) lines.push(`  ${k.padEnd(w)}  ${v}`);
  for (const c of o.checks) lines.push(`  ${c.ok ? 'PASS' : 'FAIL'}  ${c.name}: ${c.detail}`);
  return lines.join('\n');
}

/** A chaos check reports a miss as a finding instead of throwing; every 50 ms, as some conditions query the store. */
export const waitUntil = (what: string, pred: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> => waitedFor(what, pred, timeoutMs, 50);

export interface Got {
  topic: string;
  at: number;
  json: Record<string, unknown>;
}

/**
 * The NOC: subscribes per device to `play`, `event`, `heartbeat` and `status` with `+` (as an
 * operations centre does), never `#`, and stamps each message with its arrival time.
 */
export class Noc {
  readonly got: Got[] = [];
  private constructor(readonly client: MqttClient) {
    client.on('message', (topic, payload) => {
      let json: Record<string, unknown>;
      try {
        json = JSON.parse(payload.toString()) as Record<string, unknown>;
      } catch {
        json = { unparsable: payload.toString().slice(0, 200) };
      }
      this.got.push({ topic, at: Date.now(), json });
    });
  }
  static async connect(t: Teardown, url: string): Promise<Noc> {
    const client = await mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 200, clientId: `noc-${process.pid}-${Date.now()}` });
    t.teardown(() => client.end(true));
    await client.subscribeAsync(['signage/device/+/play', 'signage/device/+/event', 'signage/device/+/heartbeat', 'signage/device/+/status'], { qos: 1 });
    return new Noc(client);
  }
  of(deviceId: string, suffix: string): Got[] {
    return this.got.filter((m) => m.topic === `signage/device/${deviceId}/${suffix}`);
  }
  plays(deviceId: string): PlayMsg[] {
    return this.of(deviceId, 'play').map((m) => m.json as unknown as PlayMsg);
  }
  events(deviceId: string, type?: string): Array<{ ts: string; type: string; detail: unknown }> {
    return this.of(deviceId, 'event')
      .map((m) => m.json as { ts: string; type: string; detail: unknown })
      .filter((e) => type === undefined || e.type === type);
  }
  async publish(topic: string, payload: string | Buffer, retain = false, qos: 0 | 1 = 1): Promise<void> {
    await this.client.publishAsync(topic, payload, { qos, retain });
  }
}

/**
 * What is on screen: mpv's open files, polled every 50 ms under /proc (mpv's own log file is
 * buffered and lags by seconds). A spot is loaded with `loadfile … replace`, never prefetched, so
 * each interval its file is open is one showing of it; mpv restarts are followed via the agent's children.
 * A file opened and closed between two polls (under 50 ms) is missed: no spot is that short.
 */
export class ScreenWatch {
  /** One entry per showing: the file, when mpv opened it and (once closed) when it let it go. */
  readonly shows: Array<{ file: string; at: number; until?: number }> = [];
  private readonly open = new Map<string, { file: string; at: number; until?: number }>();
  private readonly timer: NodeJS.Timeout;
  constructor(private readonly agentPid: () => number | undefined, private readonly watched: (file: string) => boolean) {
    this.timer = setInterval(() => this.poll(), 50);
  }
  private mpvPids(): string[] {
    const pid = this.agentPid();
    if (pid === undefined) return [];
    try {
      const children = readdirSync(`/proc/${pid}/task`).flatMap((tid) => readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean));
      // Only the player: it alone is given the IPC channel. A short-lived mpv or ffprobe that
      // probes a clip's length also opens the file, and that is not a showing.
      return children.filter((c) => {
        try {
          return readFileSync(`/proc/${c}/cmdline`, 'utf8').includes('--input-ipc-client=');
        } catch {
          return false;
        }
      });
    } catch {
      return [];
    }
  }
  poll(): void {
    const now = Date.now();
    const seen = new Set<string>();
    for (const child of this.mpvPids()) {
      let fds: string[];
      try {
        fds = readdirSync(`/proc/${child}/fd`);
      } catch {
        continue;
      }
      for (const fd of fds) {
        let target: string;
        try {
          target = readlinkSync(`/proc/${child}/fd/${fd}`);
        } catch {
          continue;
        }
        if (this.watched(target)) seen.add(target);
      }
    }
    for (const f of seen) {
      if (this.open.has(f)) continue;
      const show = { file: f, at: now };
      this.open.set(f, show);
      this.shows.push(show);
    }
    for (const [f, show] of this.open) {
      if (seen.has(f)) continue;
      show.until = now;
      this.open.delete(f);
    }
  }
  stop(): void {
    clearInterval(this.timer);
  }
  playing(file?: string): Array<{ file: string; at: number; until?: number }> {
    return this.shows.filter((s) => file === undefined || s.file === file);
  }
}

export interface Clips {
  dir: string;
  spot: { file: string; url: string; sha256: string; ms: number };
  loop: { file: string; url: string; sha256: string; ms: number };
}

/** A 2 s spot and a 3 s loop clip (ffmpeg), copied into `dir` so a scenario may remove its source. */
export async function chaosClips(dir: string): Promise<Clips> {
  const spotSrc = await makeClip({ kind: 'pattern', seconds: 2, size: '160x120' });
  const loopSrc = await makeClip({ kind: 'pattern', seconds: 3, size: '176x144' });
  const spot = path.join(dir, 'spot.mp4');
  const loop = path.join(dir, 'loop.mp4');
  copyFileSync(spotSrc, spot);
  copyFileSync(loopSrc, loop);
  return {
    dir,
    spot: { file: spot, url: `file://${spot}`, sha256: sha256File(spot), ms: 2000 },
    loop: { file: loop, url: `file://${loop}`, sha256: sha256File(loop), ms: 3000 },
  };
}

/**
 * A fixed-offset zone in which it is late morning now, so that windows an hour either side of
 * now never cross local midnight, whatever time of day the suite runs. Etc/GMT-N means UTC+N.
 */
export function morningZone(now = Date.now()): { timezone: string; offsetMs: number } {
  const h = new Date(now).getUTCHours();
  let off = 10 - h;
  if (off > 14) off -= 24;
  if (off < -12) off += 24;
  const timezone = off === 0 ? 'Etc/GMT' : off > 0 ? `Etc/GMT-${off}` : `Etc/GMT+${-off}`;
  return { timezone, offsetMs: off * 3600_000 };
}

function hms(at: number, offsetMs: number): string {
  return new Date(at + offsetMs).toISOString().slice(11, 19);
}

/** `HH:MM:SS-HH:MM:SS` local in the zone, for [start, start + seconds). */
export function windowOf(start: number, seconds: number, offsetMs: number): string {
  return `${hms(start, offsetMs)}-${hms(start + seconds * 1000, offsetMs)}`;
}

/** PROTOCOL §6 even grid: (i + ½)·T/N over the windows glued end to end (windows as [start, end) instants). */
export function gridOf(windows: Array<[number, number]>, n: number): number[] {
  const spans = [...windows].sort((a, b) => a[0] - b[0]);
  const total = spans.reduce((s, [a, b]) => s + (b - a), 0);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    let off = ((i + 0.5) * total) / n;
    for (const [a, b] of spans) {
      if (off < b - a) {
        out.push(a + off);
        break;
      }
      off -= b - a;
    }
  }
  return out;
}

export interface AgentOpts {
  dataDir: string;
  timezone: string;
  mpvLog: string;
  heartbeatSec?: number;
  env?: Record<string, string>;
  /** The agent's log level (default debug, as in every test); the flood runs at info, as deployed. */
  logLevel?: 'debug' | 'info';
}

/**
 * A new agent process for `deviceId` (config written, not started) on the stage's broker, with
 * mpv logging to `mpvLog` (what was on screen) and the given extra environment (libfaketime).
 */
export function chaosAgent(t: Teardown, dir: string, deviceId: string, broker: Broker, o: AgentOpts): ChaosAgent {
  const a = new AgentProcess(dir, deviceId, broker.url, {
    dataDir: o.dataDir,
    timezone: o.timezone,
    heartbeatSec: o.heartbeatSec ?? 5,
    player: { args: ['--vo=null', '--ao=null', `--log-file=${o.mpvLog}`] },
    // chaosClips copies the clips into `dir`. The disk-full scenario's dataDir is an 8 MB tmpfs:
    // the default 256 MB free-space floor would refuse every clip before the scenario starts.
    media: { fileRoots: [dir], allowHosts: ['127.0.0.1'], minFreeMB: 1 },
  }).register(t);
  if (o.logLevel) a.logLevel = o.logLevel;
  return new ChaosAgent(a, o.env ?? {}, o.mpvLog, t);
}

export class ChaosAgent {
  /** What mpv had open, i.e. on screen (media files of the cache only). */
  tail: ScreenWatch | undefined;
  constructor(readonly proc: AgentProcess, private readonly env: Record<string, string>, readonly mpvLog: string, private readonly t: Teardown) {}

  /**
   * AgentProcess spawns with process.env; spawn copies the environment synchronously, so the
   * extra variables are set for that one call and put back at once (no other spawn sees them).
   */
  start(): void {
    const saved = new Map(Object.keys(this.env).map((k) => [k, process.env[k]] as const));
    Object.assign(process.env, this.env);
    try {
      this.proc.start();
    } finally {
      for (const [k, v] of saved) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
    const tail = new ScreenWatch(() => this.proc.pid, (f) => f.includes('/media/') && f.endsWith('.mp4'));
    this.tail = tail;
    this.t.teardown(() => tail.stop());
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** Still running (not exited)? */
  alive(): boolean {
    const pid = this.proc.pid;
    if (pid === undefined) return false;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return !/^\d+ \(.*\) Z/.test(stat);
    } catch {
      return false;
    }
  }

  /** Resident set size of the agent's Node process, MiB (mpv is a separate process). */
  rssMiB(): number | undefined {
    const pid = this.proc.pid;
    if (pid === undefined) return undefined;
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return m ? Number(m[1]) / 1024 : undefined;
    } catch {
      return undefined;
    }
  }

  /** SIGTERM, and kill -9 if it has not exited within `timeoutMs`; the exit code (null when killed). */
  async stop(timeoutMs = 15_000): Promise<number | null> {
    if (!this.alive()) return null;
    const code = await Promise.race([this.proc.stop(), sleep(timeoutMs).then(() => 'timeout' as const)]);
    if (code !== 'timeout') return code;
    await this.proc.kill9();
    return null;
  }

  logged(msg: string): Array<Record<string, unknown>> {
    return this.proc.logged(msg);
  }

  exitInfo(): string {
    const errs = this.proc.lines.filter((l) => typeof l.level === 'number' && (l.level as number) >= 50).slice(-2);
    const stderr = this.proc.lines.filter((l) => typeof l.msg === 'string' && (l.msg as string).startsWith('stderr:')).slice(-2);
    return JSON.stringify([...errs, ...stderr]).slice(0, 400);
  }
}

/** Rows from the agent's store with the sqlite3 CLI (read-only; the agent may be running). */
export async function sql<T = Record<string, unknown>>(dbFile: string, query: string): Promise<T[] | { error: string }> {
  if (!existsSync(dbFile)) return { error: 'no store file' };
  try {
    const { stdout } = await run('sqlite3', ['-readonly', '-json', dbFile, query], { timeout: 10_000 });
    return stdout.trim() ? (JSON.parse(stdout) as T[]) : [];
  } catch (e) {
    return { error: String((e as { stderr?: string }).stderr || (e as Error).message).trim().slice(0, 200) };
  }
}

export async function startStage(t: Teardown): Promise<{ broker: Broker; noc: Noc }> {
  const broker = await startBroker(t);
  const noc = await Noc.connect(t, broker.url);
  return { broker, noc };
}

export function assignment(version: number, clips: Clips, campaign: { timesPerDay: number; windows: string[] }): string {
  return JSON.stringify({
    version,
    campaigns: [{ id: 'spot', media: { url: clips.spot.url, sha256: clips.spot.sha256, durationMs: clips.spot.ms }, timesPerDay: campaign.timesPerDay, windows: campaign.windows }],
    loop: [{ url: clips.loop.url, sha256: clips.loop.sha256 }],
  });
}

/** The eventId format of PROTOCOL v1.1 §8: `{id}:{storeId}:{seq}`. */
export function eventIdWellFormed(p: PlayMsg & { storeId?: unknown }): boolean {
  return typeof p.storeId === 'string' && p.storeId.length > 0 && p.eventId === `${p.deviceId}:${p.storeId}:${p.seq}`;
}

export const ms = (a: number): string => `${Math.round(a)} ms`;
export const at = (t: number, t0: number): string => `+${((t - t0) / 1000).toFixed(1)}s`;
