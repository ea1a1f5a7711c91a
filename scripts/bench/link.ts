import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { parseConfig } from '../../agent/config/config.js';
import { SystemClock } from '../../agent/core/clock.js';
import { silentLogger } from '../../agent/core/log.js';
import { MqttLink } from '../../agent/link/link.js';
import { EventRecorder } from '../../agent/events/recorder.js';
import { deviceTopic } from '../../agent/protocol/topics.js';
import { SqliteStore } from '../../agent/store/sqlite-store.js';
import { startBroker } from '../../test/helpers/mosquitto.js';
import { waitFor } from '../../test/helpers/wait.js';

// One mosquitto, one run. (a) Store-and-forward drain rate of 100,000 queued outbox rows through
// MqttLink (SQLite peek → QoS 1 publish → PUBACK → batched delete), against raw mqtt.js QoS 1
// publishing of the same payloads with the same in-flight window (goal ≥ 50% of raw). (b) MQTT
// round trip publish → receive on the same broker, p50/p99: the floor under override-to-replan.

const N = 100_000;
const WINDOW = 100;
const DEVICE = 'bench-1';

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
}

function playPayload(seq: number): string {
  return JSON.stringify({
    eventId: `${DEVICE}:${seq}`, seq, deviceId: DEVICE, campaignId: 'ihanoi-2024', mediaSha256: 'a'.repeat(64), day: '2024-08-15',
    scheduledAt: '2024-08-15T07:00:00.000+07:00', startedAt: '2024-08-15T07:00:00.012+07:00', endedAt: '2024-08-15T07:00:30.020+07:00',
    durationMs: 30008, outcome: 'completed', inWindow: true, played: 4, target: 10, display: 'connected', clockSynced: true,
  });
}

/** Counts messages on a topic filter (QoS 1), so every publish has a subscriber (PUBACK 0, not 0x10). */
async function consumer(url: string, filter: string): Promise<{ client: MqttClient; count: () => number; reset: () => void }> {
  const client = await mqtt.connectAsync(url, { protocolVersion: 5 });
  let n = 0;
  client.on('message', () => { n++; });
  await client.subscribeAsync(filter, { qos: 1 });
  return { client, count: () => n, reset: () => { n = 0; } };
}

/** Raw mqtt.js: QoS 1 publishes with at most `window` awaiting their PUBACK. Returns msgs/s. */
async function rawPublish(url: string, topic: string, payloads: string[], window: number): Promise<number> {
  const client = await mqtt.connectAsync(url, { protocolVersion: 5 });
  const t0 = performance.now();
  let next = 0;
  await new Promise<void>((resolve, reject) => {
    let inflight = 0;
    let done = 0;
    const pump = (): void => {
      while (inflight < window && next < payloads.length) {
        inflight++;
        client.publish(topic, payloads[next++]!, { qos: 1 }, (err) => {
          if (err) return reject(err);
          inflight--;
          if (++done === payloads.length) resolve();
          else pump();
        });
      }
    };
    pump();
  });
  const rate = payloads.length / ((performance.now() - t0) / 1000);
  await client.endAsync();
  return rate;
}

/**
 * MQTT round trip on one broker: publish (QoS `qos`) on one client, receive on another, `n`
 * times one after the other. Returns the latencies in ms. Reusable as the baseline for any
 * "message in → reaction" latency.
 */
export async function mqttRoundTrip(url: string, n = 1000, qos: 0 | 1 = 1): Promise<number[]> {
  const topic = `bench/rtt/${process.pid}`;
  const sub = await mqtt.connectAsync(url, { protocolVersion: 5 });
  const pub = await mqtt.connectAsync(url, { protocolVersion: 5 });
  await sub.subscribeAsync(topic, { qos });
  const out: number[] = [];
  let waiter: (() => void) | undefined;
  let expect = '';
  sub.on('message', (_t, payload) => {
    if (payload.toString() === expect) waiter?.();
  });
  for (let i = 0; i < n; i++) {
    expect = `{"i":${i}}`;
    const got = new Promise<void>((r) => { waiter = r; });
    const t0 = performance.now();
    pub.publish(topic, `{"i":${i}}`, { qos });
    await got;
    out.push(performance.now() - t0);
  }
  await Promise.all([sub.endAsync(), pub.endAsync()]);
  return out;
}

/** Drain of `payloads` queued in a real SqliteStore through MqttLink. Returns msgs/s and insert rate. */
async function outboxDrain(url: string, payloads: string[], window: number): Promise<{ rate: number; insertRate: number }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-link-'));
  const store = new SqliteStore({ file: path.join(dir, 'agent.db'), log: silentLogger() });
  await store.start();
  const config = parseConfig({ deviceId: DEVICE, mqtt: { url }, outbox: { inFlight: window, maxEvents: 10_000_000 } }, path.join(dir, 'config.json'));
  const clock = new SystemClock();
  const link = new MqttLink({ config, store, events: new EventRecorder({ store, clock, log: silentLogger() }), clock, log: silentLogger(), agentVersion: 'bench', bootedAt: Date.now() });
  try {
    await link.start();
    await waitFor('the link connected', () => link.connected(), 10_000);
    await new Promise((r) => setTimeout(r, 200)); // birth and first heartbeat out of the way
    const i0 = performance.now();
    for (let i = 0; i < payloads.length; i += 5000) await store.outboxInsertMany('play', payloads.slice(i, i + 5000), Date.now());
    const insertRate = payloads.length / ((performance.now() - i0) / 1000);
    const t0 = performance.now();
    link.notifyOutbox();
    await waitFor('the outbox drained', () => link.outbox.stats.deleted >= payloads.length, 300_000);
    const rate = payloads.length / ((performance.now() - t0) / 1000);
    if ((await store.outboxCount()) !== 0) throw new Error('outbox not empty after the drain');
    return { rate, insertRate };
  } finally {
    await link.stop();
    await store.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function bench(): Promise<void> {
  const broker = await startBroker();
  try {
    const payloads = Array.from({ length: N }, (_, i) => playPayload(i + 1));
    const bytes = payloads.reduce((a, p) => a + p.length, 0) / N;
    const topic = deviceTopic('signage', DEVICE, 'play');
    const sink = await consumer(broker.url, topic);
    console.log(`outbox drain: ${N} play events (~${Math.round(bytes)} B each), QoS 1, ${WINDOW} in flight, one subscriber`);

    const raw1 = await rawPublish(broker.url, topic, payloads, WINDOW);
    await waitFor('the subscriber got every play', () => sink.count() >= N, 300_000);
    sink.reset();
    const drain = await outboxDrain(broker.url, payloads, WINDOW);
    await waitFor('the subscriber got every play', () => sink.count() >= N, 300_000);
    sink.reset();
    const raw2 = await rawPublish(broker.url, topic, payloads, WINDOW);
    await waitFor('the subscriber got every play', () => sink.count() >= N, 300_000);
    const raw = (raw1 + raw2) / 2;
    console.log(`  raw mqtt.js QoS 1        ${Math.round(raw1)} / ${Math.round(raw2)} msg/s (before / after; mean ${Math.round(raw)})`);
    console.log(`  MqttLink outbox drain    ${Math.round(drain.rate)} msg/s  = ${((100 * drain.rate) / raw).toFixed(0)}% of raw (goal ≥ 50%)`);
    console.log(`  (queueing them: SqliteStore.outboxInsertMany ${Math.round(drain.insertRate)} rows/s in 5,000-row batches)`);
    await sink.client.endAsync();

    const rtt1 = await mqttRoundTrip(broker.url, 1000, 1);
    const rtt0 = await mqttRoundTrip(broker.url, 1000, 0);
    console.log(`MQTT round trip publish → receive, same broker, 1000 sequential:`);
    console.log(`  QoS 1  p50 ${pct(rtt1, 50).toFixed(2)} ms  p99 ${pct(rtt1, 99).toFixed(2)} ms`);
    console.log(`  QoS 0  p50 ${pct(rtt0, 50).toFixed(2)} ms  p99 ${pct(rtt0, 99).toFixed(2)} ms`);
  } finally {
    await broker.dispose();
  }
}

// `node dist/scripts/bench/link.js` runs this section alone.
if (import.meta.url === `file://${process.argv[1]}`) await bench();
