import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { Agent } from '../../agent/agent.js';
import { parseConfig } from '../../agent/config/config.js';
import { SystemClock } from '../../agent/core/clock.js';
import { silentLogger } from '../../agent/core/log.js';
import { EventRecorder } from '../../agent/events/recorder.js';
import { ClockSync } from '../../agent/health/clock-sync.js';
import { HealthSampler } from '../../agent/health/sampler.js';
import { MqttLink } from '../../agent/link/link.js';
import { MediaCache } from '../../agent/media/cache.js';
import { MpvPlayer, type PlaybackTrace } from '../../agent/player/mpv-player.js';
import { deviceTopic, groupTopic } from '../../agent/protocol/topics.js';
import { SqliteStore } from '../../agent/store/sqlite-store.js';
import { startBroker } from '../../test/helpers/mosquitto.js';
import { mqttRoundTrip } from './link.js';

// §10 alerts on the whole agent in-process: real broker, link, SQLite store, media cache and
// headless mpv. (a) alert published → its first frame on screen (mpv's first playback-restart of
// the alert clip), over a campaign spot in the player, against (baseline, same agent, same run) a
// spot's start: the engine asked to play it (play-now) → its first frame, and the plain MQTT round
// trip. Goal p99 ≤ 250 ms. (b) pre-staged alerts (one per group topic,
// staggered) with the broker stopped: first frame minus startsAt. Goal p99 ≤ 100 ms.

const run = promisify(execFile);
const N = 30;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const sha = (f: string): string => createHash('sha256').update(readFileSync(f)).digest('hex');

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
}

async function clip(dir: string, name: string, src: string, seconds: number): Promise<string> {
  const file = path.join(dir, name);
  await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', `${src}${src.includes('=') ? ':' : '='}size=320x180:rate=25`, '-t', String(seconds), '-pix_fmt', 'yuv420p', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25', file]);
  return file;
}

/** Resolves with the wall time of the next first frame of `file` seen after the call. */
class Frames {
  private waiters: Array<{ path: string; resolve: (at: number) => void }> = [];
  onTrace = (e: PlaybackTrace): void => {
    if (e.event !== 'playing') return;
    const at = Date.now();
    this.waiters = this.waiters.filter((w) => (w.path === e.path ? (w.resolve(at), false) : true));
  };
  next(file: string, timeoutMs = 20_000): Promise<number> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no frame of ${path.basename(file)} within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({ path: file, resolve: (at) => (clearTimeout(t), resolve(at)) });
    });
  }
}

export async function bench(): Promise<void> {
  const broker = await startBroker();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-alert-'));
  const log = silentLogger();
  const groups = Array.from({ length: N }, (_, i) => `g${i}`);
  let agent: Agent | undefined;
  try {
    const spot = await clip(dir, 'spot.mp4', 'testsrc2', 20);
    const loop = await clip(dir, 'loop.mp4', 'testsrc', 3);
    const red = await clip(dir, 'red.mp4', 'color=c=red', 3);
    const ref = (f: string): { url: string; sha256: string } => ({ url: `file://${f}`, sha256: sha(f) });
    const config = parseConfig({ deviceId: 'bench-al', groups, dataDir: dir, mqtt: { url: broker.url }, media: { fileRoots: [dir] }, player: { args: ['--vo=null', '--ao=null'] } }, path.join(dir, 'c.json'), false);
    const clock = new SystemClock();
    const store = new SqliteStore({ file: path.join(dir, 'agent.db'), log });
    const media = new MediaCache({ dir: path.join(dir, 'media'), maxBytes: 256 << 20, clock, log, sources: config.media });
    const events = new EventRecorder({ store, clock, log });
    const frames = new Frames();
    const player = new MpvPlayer({ mpvPath: 'mpv', args: config.player.args, log, clock, screenshotDir: path.join(dir, 'shots'), evidence: false, trace: frames.onTrace });
    agent = new Agent({
      clock, store, events, log, config, media, player,
      link: new MqttLink({ config, store, events, clock, log, agentVersion: 'bench', bootedAt: clock.now() }),
      health: new HealthSampler({ dataDir: dir, log }),
      clockSync: new ClockSync({ log, runCommand: async () => 'yes' }),
      agentVersion: 'bench',
      bootedAt: clock.now(),
    });
    await agent.start();
    const rtt = await mqttRoundTrip(broker.url, 200, 1);
    const op = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
    const pub = (topic: string, body: string): Promise<unknown> => op.publishAsync(topic, body, { qos: 1, retain: true });
    // timesPerDay 0: no planned slot interferes; play-now puts the spot on screen.
    await pub(deviceTopic('signage', 'bench-al', 'assignment'), JSON.stringify({ version: 1, campaigns: [{ id: 'spot', media: ref(spot), timesPerDay: 0 }], loop: [ref(loop)] }));
    const alertTopic = deviceTopic('signage', 'bench-al', 'alert');
    // The red clip verified once (a pre-staged alert far ahead), so (a) measures the interrupt, not a download.
    await pub(alertTopic, JSON.stringify({ version: 1, id: 'warm', media: ref(red), startsAt: new Date(Date.now() + 3_600_000).toISOString(), expiresAt: new Date(Date.now() + 3_700_000).toISOString() }));
    for (let i = 0; !(media.resolve(ref(spot)) && media.resolve(ref(red))); i++) {
      if (i > 400) throw new Error('clips not verified');
      await sleep(50);
    }
    // The player plays the cache's copies.
    const [spotPath, redPath] = [media.resolve(ref(spot))!.path, media.resolve(ref(red))!.path];
    let loopPath: string | undefined;
    for (let i = 0; !(loopPath = media.resolve(ref(loop))?.path); i++) {
      if (i > 400) throw new Error('loop not verified');
      await sleep(50);
    }
    let version = 1;
    const playNow: number[] = [];
    const alert: number[] = [];
    for (let i = 0; i < N; i++) {
      const spotFrame = frames.next(spotPath);
      const t0 = Date.now();
      // In-process: the play-now command is rate-limited to one per 10 s (link/rate-limits.ts).
      agent.engine.playNow('spot');
      playNow.push((await spotFrame) - t0);
      await sleep(400);
      const alertFrame = frames.next(redPath);
      const t1 = Date.now();
      await pub(alertTopic, JSON.stringify({ version: ++version, id: `a${i}`, media: ref(red), startsAt: new Date(t1 - 1000).toISOString(), expiresAt: new Date(t1 + 60_000).toISOString() }));
      alert.push((await alertFrame) - t1);
      const back = frames.next(loopPath);
      await pub(alertTopic, '');
      await back;
      await sleep(200);
    }
    // (b) Pre-staged: one alert per group topic, 2 s each, 3 s apart, then the broker goes away.
    const base = Math.ceil((Date.now() + 8000) / 1000) * 1000;
    const starts = groups.map((_, i) => base + i * 3000);
    for (const [i, g] of groups.entries()) {
      await pub(groupTopic('signage', g, 'alert'), JSON.stringify({ version: 1, id: `p${i}`, media: ref(red), startsAt: new Date(starts[i]!).toISOString(), expiresAt: new Date(starts[i]! + 2000).toISOString() }));
    }
    await sleep(1000);
    await op.endAsync();
    await broker.stop();
    const staged: number[] = [];
    for (const at of starts) {
      const frame = frames.next(redPath, at - Date.now() + 10_000);
      staged.push((await frame) - at);
    }
    const f = (xs: number[]): string => `p50 ${pct(xs, 50).toFixed(0)} ms, p99 ${pct(xs, 99).toFixed(0)} ms, max ${Math.max(...xs).toFixed(0)} ms`;
    console.log(`MQTT QoS 1 round trip (baseline, n=200):                           ${f(rtt)}`);
    console.log(`spot start: engine play-now → spot's first frame (baseline, n=${N}):  ${f(playNow)}`);
    console.log(`alert published → first alert frame, over a spot (n=${N}):         ${f(alert)}  [goal p99 ≤ 250 ms: ${pct(alert, 99) <= 250 ? 'met' : 'NOT met'}]`);
    console.log(`pre-staged alert, broker down: first frame − startsAt (n=${N}):    ${f(staged)}  [goal p99 ≤ 100 ms: ${pct(staged, 99) <= 100 ? 'met' : 'NOT met'}]`);
    console.log(`  (no pre-staged alert started early: min ${Math.min(...staged).toFixed(0)} ms)`);
  } finally {
    await agent?.stop().catch(() => undefined);
    await broker.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}
