import { spawn } from 'node:child_process';
import { get as httpGet, type ClientRequest } from 'node:http';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { Db } from '../../fleet/archive/db.js';
import { SERVE_NODE_FLAGS } from '../../fleet/cli/node-flags.js';
import { parseDuration } from '../../fleet/sim/cli.js';
import { fileURLToPath } from 'node:url';
import { untilSubscribed } from '../../test/helpers/fleet-rig.js';
import { startBroker } from '../../test/helpers/mosquitto.js';
import { freePort } from '../../test/helpers/ports.js';
import { childPid, cpuSeconds, sample, type ProcSample } from './proc.js';

// A simulated fleet (signage-fleet simulate-fleet, its own process) against one mosquitto and one
// `serve` (its own process, SQLite archive): plays sent vs archived (lost, extra), the CPU and RSS
// of the ingest, the broker and the simulator from /proc, heartbeat-to-page latency (an open NOC
// page's event stream), and heartbeat-to-archive latency (the
// heartbeat's ts → its devices row seen by a reader polling the archive every 100 ms). Baseline:
// the same processes' CPU over 10 s before the screens connect.
// FLEET_SIM_DEVICES (1000), FLEET_SIM_DURATION (5m), FLEET_SIM_PPH (60) shorten it for a smoke run.

const DEVICES = Number(process.env.FLEET_SIM_DEVICES ?? 1000);
const DURATION = process.env.FLEET_SIM_DURATION ?? '5m';
const DURATION_MS = parseDuration(DURATION) ?? 300_000;
const PPH = Number(process.env.FLEET_SIM_PPH ?? 60);
// npm run bench runs from dist/ (the fleet's main.js beside); a run from the sources uses dist/ too.
const here = path.dirname(fileURLToPath(import.meta.url));
const FLEET_BIN = [path.resolve(here, '../../fleet/main.js'), path.resolve(here, '../../dist/fleet/main.js')].find((f) => existsSync(f)) ?? 'dist/fleet/main.js';

const cpuPct = (a: ProcSample, b: ProcSample): string => `${((cpuSeconds(a, b) / ((b.at - a.at) / 1000)) * 100).toFixed(1)}%`;
const mb = (kb: number): string => `${(kb / 1024).toFixed(0)} MB`;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function bench(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-fleet-sim-'));
  const broker = await startBroker();
  const config = path.join(dir, 'fleet.json');
  const httpPort = await freePort();
  writeFileSync(config, JSON.stringify({ db: path.join(dir, 'archive.db'), mqtt: { url: broker.url, clientId: 'bench-ingest' }, http: { port: httpPort }, log: { level: 'warn' } }));
  const ingest = spawn(process.execPath, [...SERVE_NODE_FLAGS, FLEET_BIN, 'serve', '--config', config], { stdio: ['ignore', 'ignore', 'inherit'] });
  const ingestExit = new Promise((r) => ingest.once('exit', r));
  try {
    const probe = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
    await untilSubscribed(probe);
    await probe.endAsync();
    const mosqPid = childPid('mosquitto');
    const ingestPid = ingest.pid!;
    const archive = await Db.open(path.join(dir, 'archive.db'));
    await archive.read((q) => q.exec('PRAGMA busy_timeout = 10000'));

    await sleep(3000); // past the ingest's start-up work
    const idle0 = { m: sample(mosqPid), i: sample(ingestPid) };
    await sleep(10_000);
    const idle1 = { m: sample(mosqPid), i: sample(ingestPid) };

    const report = path.join(dir, 'sim.json');
    const sim = spawn(process.execPath, [FLEET_BIN, 'simulate-fleet', '--devices', String(DEVICES), '--broker', broker.url, '--heartbeat-sec', '10',
      '--plays-per-hour', String(PPH), '--duration', DURATION, '--report', report, '--data-dir', path.join(dir, 'screens')], { stdio: ['ignore', 'pipe', 'inherit'] });
    const simOut: string[] = [];
    sim.stdout.on('data', (d: Buffer) => simOut.push(d.toString()));
    const simExit = new Promise<number | null>((r) => sim.once('exit', (c) => r(c)));

    // Heartbeat ts → the NOC page: one open page's Server-Sent Events stream, as a browser holds it.
    const pageSeen = new Map<string, string>();
    const pageLatencies: number[] = [];
    const page: ClientRequest = httpGet(`http://127.0.0.1:${httpPort}/api/events`, (res) => {
      let buf = '';
      res.setEncoding('utf8').on('data', (d: string) => {
        buf += d;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const msg = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = msg.split('\n').find((l) => l.startsWith('data: '));
          if (!data) continue;
          const now = Date.now();
          const body = JSON.parse(data.slice(6)) as { tiles?: Array<{ deviceId: string; heartbeatAt: string | null }> };
          for (const tile of body.tiles ?? []) {
            if (!tile.heartbeatAt || pageSeen.get(tile.deviceId) === tile.heartbeatAt) continue;
            if (pageSeen.has(tile.deviceId)) pageLatencies.push(now - Date.parse(tile.heartbeatAt));
            pageSeen.set(tile.deviceId, tile.heartbeatAt);
          }
        }
      });
    });
    page.on('error', () => undefined);

    // Heartbeat ts → devices row visible: poll the archive as a page would.
    const seen = new Map<string, string>();
    const latencies: number[] = [];
    let polling = true;
    let runStart: { m: ProcSample; i: ProcSample; s: ProcSample } | undefined;
    let runEnd: typeof runStart;
    let simPeak = 0;
    let startedAt = 0;
    const poller = (async () => {
      while (polling) {
        const rows = await archive.read((q) => q.all<{ device_id: string; heartbeat_at: string | null }>("SELECT device_id, heartbeat_at FROM devices WHERE device_id LIKE 'sim-%'"));
        const now = Date.now();
        for (const r of rows) {
          if (!r.heartbeat_at || seen.get(r.device_id) === r.heartbeat_at) continue;
          // The first row of each screen is its connect-time beat, seen before polling settled: skip it.
          if (seen.has(r.device_id)) latencies.push(now - Date.parse(r.heartbeat_at));
          seen.set(r.device_id, r.heartbeat_at);
        }
        // Steady state: every screen has beaten once; measure CPU from here to the end of the run.
        if (!runStart && seen.size >= DEVICES) runStart = { m: sample(mosqPid), i: sample(ingestPid), s: sample(sim.pid!) };
        if (!startedAt && simOut.join('').includes('virtual screens on')) startedAt = Date.now();
        // The run ends `duration` after the screens started (then they stop and drain).
        if (runStart && !runEnd && startedAt && Date.now() - startedAt >= DURATION_MS - 500) runEnd = { m: sample(mosqPid), i: sample(ingestPid), s: sample(sim.pid!) };
        try {
          const kb = sample(sim.pid!).rssKB;
          if (Number.isFinite(kb)) simPeak = Math.max(simPeak, kb);
        } catch { /* exited */ }
        await sleep(100);
      }
    })();
    const code = await simExit;
    const result = JSON.parse(readFileSync(report, 'utf8')) as { plays: number; playsSent: number; playsUnsent: number; heartbeats: number; rssBytes: number; peakRssBytes: number; sent: Record<string, string[]> };
    const sent = new Set(Object.values(result.sent).flat());
    // Wait for the archive to hold them (or stop growing for 10 s).
    let n = -1;
    let still = 0;
    while (still < 100) {
      const m = (await archive.read((q) => q.get<{ n: number }>("SELECT COUNT(*) AS n FROM plays WHERE device_id LIKE 'sim-%'")))?.n ?? 0;
      if (m >= sent.size) break;
      still = m === n ? still + 1 : 0;
      n = m;
      await sleep(100);
    }
    polling = false;
    await poller;
    page.destroy();
    const rows = await archive.read((q) => q.all<{ event_id: string }>("SELECT event_id FROM plays WHERE device_id LIKE 'sim-%'"));
    const archived = new Set(rows.map((r) => r.event_id));
    const lost = [...sent].filter((id) => !archived.has(id)).length;
    const extra = [...archived].filter((id) => !sent.has(id)).length;
    const ingestEnd = sample(ingestPid);
    const mosqEnd = sample(mosqPid);
    await archive.close();

    console.log(simOut.join('').trimEnd().split('\n').map((l) => `  sim: ${l}`).join('\n'));
    console.log(`fleet: ${DEVICES} screens, heartbeats every 10 s, ${PPH} plays/h each, ${DURATION} (simulate-fleet exit ${code})`);
    console.log(`plays: ${result.plays} recorded by the screens, ${result.playsSent} sent (acked by the broker), ${archived.size} archived; lost ${lost}, doubled ${rows.length - archived.size}, archived but not counted as sent ${extra}, left in outboxes ${result.playsUnsent}`);
    console.log(`heartbeats: ${result.heartbeats} built; heartbeat ts -> devices row visible (100 ms polling): p50 ${pct(latencies, 50)} ms, p99 ${pct(latencies, 99)} ms, max ${pct(latencies, 100)} ms (n=${latencies.length})`);
    console.log(`heartbeat ts -> the NOC page (its Server-Sent Events stream, 200 ms coalescing): p50 ${pct(pageLatencies, 50)} ms, p99 ${pct(pageLatencies, 99)} ms, max ${pct(pageLatencies, 100)} ms (n=${pageLatencies.length})`);
    if (runStart && runEnd) {
      const secs = ((runEnd.i.at - runStart.i.at) / 1000).toFixed(0);
      console.log(`CPU over the ${secs} s of steady run (idle baseline, 10 s before the screens):`);
      console.log(`  ingest (serve)   ${cpuPct(runStart.i, runEnd.i)} of one core (idle ${cpuPct(idle0.i, idle1.i)}); RSS ${mb(ingestEnd.rssKB)}, peak ${mb(ingestEnd.hwmKB)}`);
      console.log(`  mosquitto        ${cpuPct(runStart.m, runEnd.m)} (idle ${cpuPct(idle0.m, idle1.m)}); RSS ${mb(mosqEnd.rssKB)}, peak ${mb(mosqEnd.hwmKB)}`);
      console.log(`  simulate-fleet   ${cpuPct(runStart.s, runEnd.s)}; RSS at the end of the run ${mb(result.rssBytes / 1024)} (${(result.rssBytes / 1024 / DEVICES).toFixed(0)} KB a screen), peak ${mb(Math.max(simPeak, result.peakRssBytes / 1024))}`);
    } else {
      console.log(`CPU: no steady state (${seen.size} of ${DEVICES} screens seen in the archive)`);
    }
  } finally {
    ingest.kill('SIGTERM');
    await ingestExit;
    await broker.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}
