import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { deviceTopic, parseDeviceTopic } from '../../agent/protocol/topics.js';
import { sha256File } from '../../test/helpers/agent-proc.js';
import { CLIP_DIR, makeClip } from '../../test/helpers/clips.js';
import { hcmTime } from '../../test/helpers/e2e.js';
import { startBroker } from '../../test/helpers/mosquitto.js';

// SD budget (issue 8 item 3): bytes an idle agent makes the card write, per day, at a 30 s
// heartbeat. Two figures per process: `write_bytes` from /proc/PID/io (what reached the block
// layer: SQLite, WAL, media index, anything the process wrote to a file) and the bytes of its
// stdout (pino's JSON lines, which journald writes to the card unless Storage=volatile). The
// baseline is a bare Node process with the same packages loaded and an open SQLite DB, idle.
// Per-play bytes are measured over a burst of plays and extrapolated (stated as such).
// Issue 13: the same idle agent twice, side by side, with the log ring (logs.ringKB 4096, the
// default) and without it (0): the ring lives in memory, so write_bytes must not differ beyond
// the noise of the two runs (which the bare process's figure shows).

// Run from dist/scripts/bench: the built agent is dist/agent/main.js.
const AGENT_BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../agent/main.js');
const IDLE_MS = Number(process.env.SD_IDLE_MS ?? 120_000);
// Past the media index's first flush (10 s after the clips verify): a start-up write, not idle.
const WARMUP_MS = 15_000;
const LOG_LEVEL = process.env.SD_LOG_LEVEL ?? 'info';
const PLAYS = 6;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const perDay = (bytes: number, ms: number): number => (bytes * 86_400_000) / ms;
const mb = (b: number): string => `${(b / 1e6).toFixed(2)} MB`;

function writeBytes(pid: number): number {
  const m = /write_bytes:\s*(\d+)/.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
  return Number(m?.[1] ?? NaN);
}

interface Proc {
  child: ChildProcess;
  stdoutBytes: () => number;
  lines: () => string[];
  exit: () => Promise<void>;
}

function launch(cmd: string, args: string[], env: Record<string, string>): Proc {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = 0;
  const lines: string[] = [];
  child.stdout!.on('data', (d: Buffer) => {
    out += d.length;
    lines.push(...d.toString().split('\n').filter(Boolean));
  });
  child.stderr!.on('data', (d: Buffer) => {
    out += d.length;
    lines.push(d.toString());
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    child,
    stdoutBytes: () => out,
    lines: () => lines,
    exit: async () => {
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(10_000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

/** Bytes written (file and stdout) by `p` over `ms`, from now. */
async function measure(p: Proc, ms: number): Promise<{ file: number; stdout: number }> {
  const pid = p.child.pid!;
  if (p.child.exitCode !== null) throw new Error(`process exited ${p.child.exitCode}: ${p.lines().slice(-5).join('\n')}`);
  const f0 = writeBytes(pid);
  const s0 = p.stdoutBytes();
  await sleep(ms);
  return { file: writeBytes(pid) - f0, stdout: p.stdoutBytes() - s0 };
}

function rssMB(p: Proc): string {
  const m = /VmRSS:\s*(\d+) kB/.exec(readFileSync(`/proc/${p.child.pid!}/status`, 'utf8'));
  return m ? `${(Number(m[1]) / 1024).toFixed(1)} MB` : '?';
}

const BARE = `
import sqlite3 from 'sqlite3';
await import('mqtt'); await import('pino'); await import('systeminformation'); await import('node-schedule');
const db = new sqlite3.Database(process.argv[1]);
db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; CREATE TABLE IF NOT EXISTS t (x)', () => {
  console.log('ready');
});
setInterval(() => {}, 1 << 30);
`;

export async function bench(): Promise<void> {
  const broker = await startBroker();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-sd-'));
  const procs: Proc[] = [];
  try {
    const spot = await makeClip({ kind: 'pattern', seconds: 1, size: '160x120' });
    const loop = await makeClip({ kind: 'pattern', seconds: 3, size: '176x144' });
    const configOf = (id: string, ringKB: number): string => {
      const file = path.join(dir, `${id}.json`);
      writeFileSync(file, JSON.stringify({
        deviceId: id,
        groups: ['all'],
        timezone: 'Asia/Ho_Chi_Minh',
        dataDir: path.join(dir, `${id}-data`),
        heartbeatSec: 30,
        mqtt: { url: broker.url },
        player: { args: ['--vo=null', '--ao=null'] },
        // The clips' folder, allowed as a site allows its own (issue 10): else nothing is on screen.
        media: { fileRoots: [CLIP_DIR] },
        logs: { ringKB },
      }));
      return file;
    };
    const configFile = configOf('sd-1', 4096);
    const noRingFile = configOf('sd-0', 0);
    const nocWatch = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
    await nocWatch.subscribeAsync('signage/device/+/#', { qos: 1 });
    const plays: unknown[] = [];
    nocWatch.on('message', (topic) => {
      if (parseDeviceTopic('signage', topic)?.kind === 'play') plays.push(topic);
    });
    // An assignment whose window is far from now (nothing due) and a loop on screen: an idle screen.
    const far = hcmTime(Date.now() + 12 * 3600_000).slice(0, 5);
    const farEnd = hcmTime(Date.now() + 12 * 3600_000 + 600_000).slice(0, 5);
    const assign = (v: number, windows: string[], times: number, device = 'sd-1'): Promise<unknown> =>
      nocWatch.publishAsync(
        deviceTopic('signage', device, 'assignment'),
        JSON.stringify({
          version: v,
          campaigns: [{ id: 'spot', media: { url: `file://${spot}`, sha256: sha256File(spot), durationMs: 1000 }, timesPerDay: times, windows }],
          loop: [{ url: `file://${loop}`, sha256: sha256File(loop) }],
        }),
        { qos: 1, retain: true },
      );
    await assign(1, [`${far}-${farEnd}`], 2);
    await assign(1, [`${far}-${farEnd}`], 2, 'sd-0');

    const agentEnv = { LOG_LEVEL, LOG_PRETTY: '0', DISPLAY: '', WAYLAND_DISPLAY: '', NOTIFY_SOCKET: '' };
    const agent = launch(process.execPath, [AGENT_BIN, 'run', '--config', configFile], agentEnv);
    procs.push(agent);
    const noRing = launch(process.execPath, [AGENT_BIN, 'run', '--config', noRingFile], agentEnv);
    procs.push(noRing);
    const bareDb = path.join(dir, 'bare.db');
    const bare = launch(process.execPath, ['--input-type=module', '-e', BARE, bareDb], {});
    procs.push(bare);
    // Start-up writes (migrations, the first index) are not idle: measure once both are up, and settled.
    const up0 = Date.now();
    const started = (p: Proc): boolean => p.lines().some((l) => l.includes('"agent started"'));
    while (!(started(agent) && started(noRing) && bare.lines().includes('ready')) && Date.now() - up0 < 60_000) await sleep(100);
    await sleep(WARMUP_MS);
    const [a, b, nr] = await Promise.all([measure(agent, IDLE_MS), measure(bare, IDLE_MS), measure(noRing, IDLE_MS)]);
    const idleFile = perDay(a.file, IDLE_MS);
    const idleOut = perDay(a.stdout, IDLE_MS);
    console.log(`idle ${IDLE_MS / 1000} s, heartbeat 30 s, LOG_LEVEL=${LOG_LEVEL}, loop on screen, nothing due; scaled to a day (one 4 KB page in the window = ${mb(perDay(4096, IDLE_MS))}/day):`);
    console.log(`  agent  write_bytes ${mb(idleFile)}/day + stdout (journal) ${mb(idleOut)}/day = ${mb(idleFile + idleOut)}/day  [goal ≤ 5 MB/day]`);
    console.log(`  the same agent without the log ring (logs.ringKB 0), side by side: write_bytes ${mb(perDay(nr.file, IDLE_MS))}/day + stdout ${mb(perDay(nr.stdout, IDLE_MS))}/day`);
    console.log(`  bare Node + same packages + open SQLite DB: write_bytes ${mb(perDay(b.file, IDLE_MS))}/day, stdout ${mb(perDay(b.stdout, IDLE_MS))}/day`);
    console.log(`  (raw over ${IDLE_MS / 1000} s: agent ${a.file} B file, ${a.stdout} B stdout; without ring ${nr.file} B file, ${nr.stdout} B stdout; bare ${b.file} B file)`);
    console.log(`  RSS after the idle period: with the ring ${rssMB(agent)}, without ${rssMB(noRing)} (the ring holds what was logged since start, at most 4 MB)`);

    // Plays: a window starting now with PLAYS plays of the 1 s clip; bytes beyond the idle rate, per play.
    const start = Date.now() + 4000;
    const winMs = PLAYS * 5000;
    await assign(2, [`${hcmTime(start)}-${hcmTime(start + winMs)}`], PLAYS);
    await noRing.exit();
    const pid = agent.child.pid!;
    const f0 = writeBytes(pid);
    const s0 = agent.stdoutBytes();
    const t0 = Date.now();
    const deadline = t0 + winMs + 30_000;
    while (plays.length < PLAYS && Date.now() < deadline) await sleep(200);
    await sleep(2000);
    const ms = Date.now() - t0;
    const n = plays.length;
    const perPlayFile = Math.max(0, (writeBytes(pid) - f0 - (a.file * ms) / IDLE_MS) / Math.max(1, n));
    const perPlayOut = Math.max(0, (agent.stdoutBytes() - s0 - (a.stdout * ms) / IDLE_MS) / Math.max(1, n));
    console.log(`per play (measured over ${n} plays in ${(ms / 1000).toFixed(0)} s, idle rate subtracted): ${(perPlayFile / 1000).toFixed(1)} kB file + ${(perPlayOut / 1000).toFixed(1)} kB stdout`);
    for (const [label, perDayPlays] of [['10 plays/day', 10], ['1 play/minute', 1440]] as const) {
      const tot = idleFile + idleOut + perDayPlays * (perPlayFile + perPlayOut);
      console.log(`  at ${label.padEnd(14)} (estimate: idle + ${perDayPlays} × per play): ${mb(tot)}/day`);
    }
    await nocWatch.endAsync();
    if (process.env.SD_DEBUG) for (const l of agent.lines()) console.log(l.slice(0, 300));
  } finally {
    for (const p of procs) await p.exit();
    await broker.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}
