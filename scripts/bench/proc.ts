import { readdirSync, readFileSync } from 'node:fs';

// CPU and memory of processes from /proc, for the benches that weigh a broker or a service's cost.

/** Clock ticks a second in /proc's utime and stime (USER_HZ, 100 on Linux). */
const HZ = 100;

export interface ProcSample { ticks: number; rssKB: number; hwmKB: number; at: number }

export function sample(pid: number): ProcSample {
  // utime and stime are fields 14 and 15; the comm field may hold spaces, so count from its ')'.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  return { ticks: Number(f[11]) + Number(f[12]), rssKB: kb('VmRSS'), hwmKB: kb('VmHWM'), at: performance.now() };
}

/** CPU seconds a process used between two samples. */
export const cpuSeconds = (a: ProcSample, b: ProcSample): number => (b.ticks - a.ticks) / HZ;

/** This process's children whose command line contains `needle` (startBroker and FleetProcess keep their pids to themselves). */
export function childPid(needle: string): number {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(needle)) return Number(d);
    } catch { /* gone */ }
  }
  throw new Error(`no child process running ${needle}`);
}
