import { readFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import si from 'systeminformation';
import type { Logger } from '../core/log.js';
import { execCommand, isMissingBinary, type RunCommand } from './command.js';
import { diskFreeMB } from '../fsx/free-space.js';
import { findThrottledFile, parseThrottled, readThermalZoneC, type ThrottledState } from './probes.js';

/** Heartbeat health fields (PROTOCOL §8) plus Pi throttling when the box has the firmware interface. */
export interface HealthSample {
  cpuTempC: number | null;
  load1: number;
  memUsedPct: number;
  diskFreeMB: number;
  /** null: not a Raspberry Pi (no get_throttled, no vcgencmd). */
  throttled?: ThrottledState | null;
}

export interface SourceTiming {
  calls: number;
  lastMs: number;
  maxMs: number;
}

const MEM_TTL_MS = 5_000;
const SI_TEMP_TTL_MS = 60_000;
const VCGENCMD_TTL_MS = 30_000;

/**
 * Collects the heartbeat's health figures cheaply. Measured on a 2-core box:
 * si.networkInterfaces() ~100–180 ms, the first si.currentLoad() ~0.5 s, si.fsSize() spawns df.
 * So: load1 is the kernel's 1-minute load average (what the field means, no sampling),
 * disk free is one statfs, temperature and throttling are sysfs reads; only the fallbacks
 * that cost a subprocess (si.cpuTemperature off-Pi, vcgencmd) are cached for tens of seconds.
 */
export class HealthSampler {
  private readonly sysfsRoot: string;
  private readonly run: RunCommand;
  private throttledFile: string | undefined | null = null; // null: not looked for yet
  private vcgencmdMissing = false;
  private readonly cache = new Map<string, { at: number; value: Promise<unknown> }>();
  private readonly timing = new Map<string, SourceTiming>();
  private warm: Promise<void> | undefined;

  constructor(private readonly ctx: { dataDir: string; log: Logger; sysfsRoot?: string; runCommand?: RunCommand }) {
    this.sysfsRoot = ctx.sysfsRoot ?? '/sys';
    this.run = ctx.runCommand ?? execCommand();
  }

  /** Locates the throttling source and warms the cached calls in the background; never fails. */
  async start(): Promise<void> {
    this.warm = this.sample().then(
      (s) => this.ctx.log.debug({ health: s, timings: this.timings() }, 'health sampler warm'),
      (e: unknown) => this.ctx.log.warn({ err: e }, 'health sample failed at start'),
    );
  }

  async stop(): Promise<void> {
    await this.warm;
  }

  async sample(): Promise<HealthSample> {
    const [cpuTempC, memUsedPct, disk, throttled] = await Promise.all([
      this.cpuTemp(),
      this.cached('mem', MEM_TTL_MS, () => si.mem()).then((m) => (m.total > 0 ? round1((100 * (m.total - m.available)) / m.total) : 0)),
      this.timed('statfs', () => diskFreeMB(this.ctx.dataDir)).catch((e: unknown) => {
        this.ctx.log.warn({ err: e, dataDir: this.ctx.dataDir }, 'statfs of dataDir failed');
        return -1;
      }),
      this.throttled(),
    ]);
    return { cpuTempC, load1: Math.round((loadavg()[0] ?? 0) * 100) / 100, memUsedPct, diskFreeMB: disk, throttled };
  }

  /** Per-source call counts and durations, for benchmarks and the `report` command. */
  timings(): Record<string, SourceTiming> {
    return Object.fromEntries([...this.timing].map(([k, v]) => [k, { ...v }]));
  }

  private async cpuTemp(): Promise<number | null> {
    const zone = await this.timed('thermal_zone0', () => readThermalZoneC(this.sysfsRoot));
    if (zone !== undefined) return zone;
    const t = await this.cached('si.cpuTemperature', SI_TEMP_TTL_MS, () => si.cpuTemperature()).catch(() => undefined);
    const main = t?.main;
    // si reports null (or -1 in some versions) when a VM exposes no sensor.
    return typeof main === 'number' && Number.isFinite(main) && main > -100 ? round1(main) : null;
  }

  private async throttled(): Promise<ThrottledState | null> {
    if (this.throttledFile === null) this.throttledFile = await findThrottledFile(this.sysfsRoot);
    const file = this.throttledFile;
    if (file !== undefined) {
      const parsed = await this.timed('get_throttled', () => readFile(file, 'utf8'))
        .then(parseThrottled)
        .catch(() => undefined);
      if (parsed) return parsed;
    }
    if (this.vcgencmdMissing) return null;
    try {
      const out = await this.cached('vcgencmd', VCGENCMD_TTL_MS, () => this.run('vcgencmd', ['get_throttled']));
      return parseThrottled(out) ?? null;
    } catch (e) {
      if (isMissingBinary(e)) this.vcgencmdMissing = true;
      else this.ctx.log.debug({ err: e }, 'vcgencmd get_throttled failed');
      return null;
    }
  }

  /** Shares one in-flight call and reuses its result for `ttlMs`; a failure is not cached. */
  private cached<T>(key: string, ttlMs: number, fn: () => Promise<T>): Promise<T> {
    const hit = this.cache.get(key);
    const now = performance.now();
    if (hit && now - hit.at < ttlMs) return hit.value as Promise<T>;
    const value = this.timed(key, fn);
    this.cache.set(key, { at: now, value });
    value.catch(() => {
      if (this.cache.get(key)?.value === value) this.cache.delete(key);
    });
    return value;
  }

  private async timed<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      const ms = performance.now() - t0;
      const s = this.timing.get(key) ?? { calls: 0, lastMs: 0, maxMs: 0 };
      s.calls++;
      s.lastMs = ms;
      s.maxMs = Math.max(s.maxMs, ms);
      this.timing.set(key, s);
    }
  }
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}
