import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { Agent } from '../../agent/agent.js';
import { parseConfig } from '../../agent/config/config.js';
import { SystemClock } from '../../agent/core/clock.js';
import { silentLogger } from '../../agent/core/log.js';
import { ClockSync } from '../../agent/health/clock-sync.js';
import { HealthSampler } from '../../agent/health/sampler.js';
import { MqttLink } from '../../agent/link/link.js';
import { EventRecorder } from '../../agent/events/recorder.js';
import { MediaCache } from '../../agent/media/cache.js';
import { SimulatedPlayer } from '../../agent/player/simulated.js';
import { deviceTopic } from '../../agent/protocol/topics.js';
import { SqliteStore } from '../../agent/store/sqlite-store.js';
import { startBroker } from '../../test/helpers/mosquitto.js';
import { mqttRoundTrip } from './link.js';

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

/**
 * Override-to-replan latency (issue 4): an operator publishes an override; how long until the
 * engine holds the new plan? Measured from publish to the engine's new plan, through the real
 * broker, link, decoder, SQLite store (synchronous=FULL) and planner, against the plain MQTT
 * round trip on the same broker in the same run.
 */
export async function bench(): Promise<void> {
  const broker = await startBroker();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-replan-'));
  const log = silentLogger();
  try {
    const rtt = await mqttRoundTrip(broker.url, 500, 1);
    const config = parseConfig({ deviceId: 'bench-1', groups: ['all'], dataDir: dir, mqtt: { url: broker.url } }, path.join(dir, 'c.json'), false);
    const clock = new SystemClock();
    const store = new SqliteStore({ file: path.join(dir, 'agent.db'), log });
    const media = new MediaCache({ dir: path.join(dir, 'media'), maxBytes: 64 << 20, clock, log, sources: config.media });
    const waiters: Array<(reason: string) => void> = [];
    const events = new EventRecorder({ store, clock, log });
    const agent = new Agent({
      clock, store, events, log, config, media,
      link: new MqttLink({ config, store, events, clock, log, agentVersion: 'bench', bootedAt: clock.now() }),
      player: new SimulatedPlayer({ clock }),
      health: new HealthSampler({ dataDir: dir, log }),
      clockSync: new ClockSync({ log, runCommand: async () => 'yes' }),
      agentVersion: 'bench',
      bootedAt: clock.now(),
      onPlanned: (_p, reason) => {
        if (reason === 'desired state changed') waiters.shift()?.(reason);
      },
    });
    await agent.start();
    const op = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
    const campaigns = Array.from({ length: 20 }, (_, i) => ({
      id: `c${i}`, media: { url: `file:///nonexistent/${i}.mp4`, sha256: String(i).padStart(64, '0') }, timesPerDay: 10, windows: ['06:30-08:30', '16:30-19:00'],
    }));
    const applied = new Promise<string>((r) => waiters.push(r));
    await op.publishAsync(deviceTopic('signage', 'bench-1', 'assignment'), JSON.stringify({ version: 1, campaigns }), { qos: 1, retain: true });
    await applied;
    const lat: number[] = [];
    for (let v = 1; v <= 200; v++) {
      const planned = new Promise<string>((r) => waiters.push(r));
      const t0 = performance.now();
      await op.publishAsync(deviceTopic('signage', 'bench-1', 'override'), JSON.stringify({ version: v, campaigns: { c3: { timesPerDay: 10 + v } } }), { qos: 1, retain: true });
      await planned;
      lat.push(performance.now() - t0);
    }
    await op.endAsync();
    await agent.stop();
    const f = (xs: number[]): string => `p50 ${pct(xs, 50).toFixed(2)} ms, p99 ${pct(xs, 99).toFixed(2)} ms`;
    console.log(`MQTT QoS 1 round trip (baseline, n=500):                 ${f(rtt)}`);
    console.log(`override published → new plan in force (20 campaigns, n=200): ${f(lat)}  [goal p99 ≤ 50 ms: ${pct(lat, 99) <= 50 ? 'met' : 'NOT met'}]`);
    console.log(`  ratio p50 to the round trip: ${(pct(lat, 50) / pct(rtt, 50)).toFixed(0)}x (the store's fsync'd transactions dominate)`);
  } finally {
    await broker.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}
