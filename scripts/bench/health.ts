import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import si from 'systeminformation';
import { silentLogger } from '../../agent/core/log.js';
import { ClockSync } from '../../agent/health/clock-sync.js';
import { HealthSampler } from '../../agent/health/sampler.js';

// What a heartbeat's health costs: HealthSampler.sample() cold (first call of a fresh sampler)
// and warm (caches filled), against the systeminformation calls it avoids or caches, all
// measured in this one run: si.networkInterfaces (~5 subprocesses), the first si.currentLoad
// (samples for ~0.5 s), si.fsSize (spawns df), si.mem, si.cpuTemperature.

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

async function timeN(n: number, fn: () => Promise<unknown>): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) xs.push(await time(fn));
  return median(xs);
}

const fmt = (ms: number): string => (ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : `${ms.toFixed(1)} ms`);

export async function bench(): Promise<void> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'bench-health-'));
  try {
    console.log('health: HealthSampler.sample() vs the systeminformation calls it avoids (medians)');
    // The first si.currentLoad of a process is the expensive one: measure it before anything else touches si.
    const currentLoadFirst = await time(() => si.currentLoad());
    const currentLoadNext = await timeN(10, () => si.currentLoad());

    const sampler = new HealthSampler({ dataDir, log: silentLogger() });
    const cold = await time(() => sampler.sample());
    const warm = await timeN(200, () => sampler.sample());
    const sample = await sampler.sample();

    const netIf = await timeN(5, () => si.networkInterfaces());
    const fsSize = await timeN(5, () => si.fsSize());
    const mem = await timeN(20, () => si.mem());
    const temp = await timeN(5, () => si.cpuTemperature());
    const clockSync = new ClockSync({ log: silentLogger(), ttlMs: 0 });
    const timedatectl = await timeN(5, () => clockSync.synced());

    const rows: Array<[string, number]> = [
      ['sample() cold (fresh sampler)', cold],
      ['sample() warm (median of 200)', warm],
      ['si.currentLoad() first call', currentLoadFirst],
      ['si.currentLoad() later calls', currentLoadNext],
      ['si.networkInterfaces()', netIf],
      ['si.fsSize()', fsSize],
      ['si.mem()', mem],
      ['si.cpuTemperature()', temp],
      ['timedatectl NTPSynchronized', timedatectl],
    ];
    for (const [name, ms] of rows) console.log(`  ${name.padEnd(32)} ${fmt(ms).padStart(10)}   ${(ms / warm).toFixed(1).padStart(8)}× sample() warm`);
    const naive = currentLoadNext + netIf + fsSize + mem + temp;
    console.log(`  a naive si heartbeat (load+net+fs+mem+temp, after warm-up) ${fmt(naive)} = ${(naive / warm).toFixed(0)}× sample() warm`);
    console.log(`  per-source timings inside the sampler: ${JSON.stringify(Object.fromEntries(Object.entries(sampler.timings()).map(([k, v]) => [k, `${v.calls}× last ${fmt(v.lastMs)}`])))}`);
    console.log(`  sample on this box: ${JSON.stringify(sample)}`);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}
