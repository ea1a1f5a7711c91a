import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { deviceTopic, encode } from '../../agent/protocol/index.js';
import { parseFleetConfig } from '../../fleet/config.js';
import { silentLogger } from '../../fleet/log.js';
import { FleetService } from '../../fleet/service.js';
import { plays } from '../../test/helpers/fleet-rig.js';
import { startBroker } from '../../test/helpers/mosquitto.js';
import { startPostgres } from '../../test/helpers/postgres.js';

// signage-fleet's ingest rate (issue 11) into SQLite and into PostgreSQL against a raw mqtt.js
// subscriber that only counts, on one mosquitto, from one message set: 20,000 QoS 1 plays from 100
// screens, published while the three consumers are offline, so each finds the same backlog queued
// in its persistent session (as after an ingest outage) and the publisher does not bound the
// figure. Each drains in turn; the ingest's figure counts a play when its batch is committed and
// acknowledged (SQLite synchronous=FULL, pg fsync on). Goal: SQLite >= 50% of raw. Three rounds
// (the next 200 seqs of each screen each time), each ratio against its own round's raw figure,
// and the median: the raw figure alone swung 56-102k msgs/s between runs on a shared 2-core box.
// All three use the ingest's default Receive Maximum and batch size.

const SCREENS = Number(process.env.BENCH_SCREENS ?? 100);
const PER_SCREEN = 200;
const ROUNDS = 3;
const PREFIX = 'signage';

async function until(what: string, pred: () => boolean | Promise<boolean>, timeoutMs = 300_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`bench timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The raw baseline: a persistent MQTT 5 session on its own share group that counts plays and acks at once. */
function rawSession(url: string, receiveMaximum: number): { connect(): Promise<void>; stop(): Promise<void>; count(): number } {
  let client: MqttClient | undefined;
  let n = 0;
  const opts = { protocolVersion: 5 as const, clientId: 'bench-raw', clean: false, properties: { sessionExpiryInterval: 3600, receiveMaximum } };
  return {
    async connect() {
      // The handler before CONNECT: a queued backlog starts flowing right after CONNACK.
      const c = mqtt.connect(url, opts);
      client = c;
      c.on('message', (topic) => { if (!topic.includes('/probe/')) n++; });
      await new Promise<void>((resolve, reject) => { c.once('connect', () => resolve()); c.once('error', reject); });
      await c.subscribeAsync(`$share/bench-raw/${PREFIX}/device/+/play`, { qos: 1 });
    },
    async stop() { await client?.endAsync(); },
    count: () => n,
  };
}

function ingest(url: string, db: string, name: string, dir: string): FleetService {
  const config = parseFleetConfig({ db, mqtt: { url, clientId: `bench-${name}`, shareGroup: `bench-${name}`, sessionExpirySec: 3600 } }, dir);
  return new FleetService(config, silentLogger());
}

/** Starts the ingest once so the broker holds its session and shared subscription; then stops it. */
async function prime(fleet: FleetService, probe: MqttClient): Promise<void> {
  await fleet.start();
  await until('ingest subscribed', async () => {
    await probe.publishAsync(deviceTopic(PREFIX, 'probe', 'play'), 'probe', { qos: 1 });
    return fleet.ingest.counters.bad > 0;
  }, 20_000);
  await fleet.stop();
}

async function publishAll(client: MqttClient, items: Array<{ topic: string; payload: string }>, window = 1000): Promise<void> {
  let next = 0;
  let done = 0;
  await new Promise<void>((resolve, reject) => {
    let inflight = 0;
    const pump = (): void => {
      while (inflight < window && next < items.length) {
        const it = items[next++]!;
        inflight++;
        client.publish(it.topic, it.payload, { qos: 1 }, (err) => {
          if (err) return reject(err);
          inflight--;
          if (++done === items.length) resolve();
          else pump();
        });
      }
    };
    pump();
  });
}

export async function bench(): Promise<void> {
  const N = SCREENS * PER_SCREEN;
  const broker = await startBroker();
  const pg = await startPostgres(undefined, { fsync: true });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-fleet-'));
  const publisher = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
  try {
    const pgUrl = await pg.createDb('bench');
    // A FleetService is started once: priming and draining each get their own, on one session.
    const lite = (): FleetService => ingest(broker.url, path.join(dir, 'archive.db'), 'sqlite', dir);
    const pgFleet = (): FleetService => ingest(broker.url, pgUrl, 'pg', dir);
    await prime(lite(), publisher);
    await prime(pgFleet(), publisher);
    const { mqtt: { receiveMaximum }, batch: { maxRows } } = lite().config;
    const raw = rawSession(broker.url, receiveMaximum);
    await raw.connect();
    await raw.stop();

    const drain = async (fleet: FleetService): Promise<{ rate: number; batches: number }> => {
      const t0 = performance.now();
      await fleet.start();
      await until(`${fleet.archive.dialect} drained`, () => fleet.batcher.totals.plays >= N && fleet.batcher.waiting === 0).catch((e: Error) => {
        throw new Error(`${e.message}: ${JSON.stringify({ totals: fleet.batcher.totals, waiting: fleet.batcher.waiting, counters: fleet.ingest.counters })}`);
      });
      const rate = N / ((performance.now() - t0) / 1000);
      const batches = fleet.batcher.totals.batches;
      await fleet.stop();
      return { rate, batches };
    };
    const f = (x: number): string => Math.round(x).toLocaleString('en-US');
    const pct = (x: number): string => `${Math.round(x * 100)} %`;
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const rounds: Array<{ pub: number; raw: number; lite: number; pg: number }> = [];
    console.log(`fleet ingest, ${f(N)} QoS 1 plays from ${SCREENS} screens a round, drained from a queued backlog (receiveMaximum ${receiveMaximum}, batches of ≤ ${maxRows}):`);
    for (let r = 0; r < ROUNDS; r++) {
      const items = Array.from({ length: SCREENS }, (_, d) => plays(`bench-${String(d).padStart(3, '0')}`, `${String(d).padStart(16, '0')}`, Array.from({ length: PER_SCREEN }, (_, i) => r * PER_SCREEN + i + 1)))
        .flat()
        .map((p) => ({ topic: deviceTopic(PREFIX, p.deviceId, 'play'), payload: encode('play', p) }));
      const p0 = performance.now();
      await publishAll(publisher, items);
      const pub = N / ((performance.now() - p0) / 1000);
      const r0 = performance.now();
      await raw.connect();
      await until('raw drained', () => raw.count() >= (r + 1) * N);
      const rawRate = N / ((performance.now() - r0) / 1000);
      await raw.stop();
      const l = await drain(lite());
      const g = await drain(pgFleet());
      rounds.push({ pub, raw: rawRate, lite: l.rate, pg: g.rate });
      console.log(`  round ${r + 1}: publish ${f(pub)}/s; raw ${f(rawRate)}/s; SQLite ${f(l.rate)}/s = ${pct(l.rate / rawRate)} (${l.batches} transactions); PostgreSQL ${f(g.rate)}/s = ${pct(g.rate / rawRate)} (${g.batches} transactions)`);
    }
    const liteRatio = median(rounds.map((x) => x.lite / x.raw));
    console.log(`  raw mqtt.js subscriber (counts only): median ${f(median(rounds.map((x) => x.raw)))} msgs/s`);
    console.log(`  ingest → SQLite (WAL, synchronous=FULL): median ${f(median(rounds.map((x) => x.lite)))} plays/s; median ratio ${pct(liteRatio)} of raw (goal ≥ 50 %: ${liteRatio >= 0.5 ? 'met' : 'not met'})`);
    console.log(`  ingest → PostgreSQL (local, fsync on): median ${f(median(rounds.map((x) => x.pg)))} plays/s; median ratio ${pct(median(rounds.map((x) => x.pg / x.raw)))} of raw`);
  } finally {
    await publisher.endAsync().catch(() => undefined);
    await broker.dispose();
    await pg.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}
