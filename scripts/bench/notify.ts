import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { silentLogger } from '../../agent/core/log.js';
import { SystemdNotifier } from '../../agent/systemd/notify.js';

// What a watchdog ping costs: SystemdNotifier sends the WATCHDOG=1 datagram from this process
// (unix-dgram). Baseline: spawning /bin/true from Node, the floor of the subprocess-based notifier
// (systemd-notify) the agent used before. The receiver is a python3 datagram socket (as in the tests).

const run = promisify(execFile);
const RECEIVER = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
while True:
    s.recvmsg(65536, 0)
`;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export async function bench(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-notify-'));
  const socket = path.join(dir, 'notify.sock');
  const rx = spawn('python3', ['-c', RECEIVER, socket], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve) => rx.stdout.once('data', () => resolve()));
    const n = 50;
    const base: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await run('/bin/true', []);
      base.push(performance.now() - t0);
    }
    const notifier = new SystemdNotifier({ socketPath: socket, log: silentLogger() });
    const ping: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await notifier.watchdog();
      ping.push(performance.now() - t0);
    }
    notifier.close();
    const b = median(base);
    const p = median(ping);
    console.log(`spawn /bin/true (baseline): median ${b.toFixed(2)} ms over ${n}`);
    console.log(`SystemdNotifier.watchdog(): median ${p.toFixed(2)} ms over ${n} (${(p / b).toFixed(2)}x baseline)`);
    console.log(`at one ping per 15 s (WatchdogSec=30) that is ${((p / 15_000) * 100).toFixed(5)}% of the time`);
  } finally {
    rx.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}
