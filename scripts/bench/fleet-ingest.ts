import { fork, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { deviceTopic, encode } from '../../agent/protocol/index.js';
import { parseFleetConfig, type FleetConfig } from '../../fleet/config.js';
import { isPostgresUrl } from '../../fleet/archive/open.js';
import { missingServeFlags, SERVE_NODE_FLAGS } from '../../fleet/cli/node-flags.js';
import { silentLogger } from '../../fleet/log.js';
import { emptyStats } from '../../fleet/archive/writes.js';
import { Batcher } from '../../fleet/ingest/batcher.js';
import { MqttIngest } from '../../fleet/ingest/ingest.js';
import { FleetService } from '../../fleet/service.js';
import { plays } from '../../test/helpers/fleet-rig.js';
import { startBroker } from '../../test/helpers/mosquitto.js';
import { startPostgres } from '../../test/helpers/postgres.js';
import { waitFor } from '../../test/helpers/wait.js';
import { childPid, cpuSeconds, sample } from './proc.js';

// signage-fleet's ingest rate (issue 11) into SQLite and into PostgreSQL against a raw mqtt.js
// subscriber that only counts, on one mosquitto, from one message set: 20,000 QoS 1 plays from 100
// screens, published while the three consumers are offline, so each finds the same backlog queued
// in its persistent session (as after an ingest outage) and the publisher does not bound the
// figure. Each drains in turn; the ingest's figure counts a play when its batch is committed and
// acknowledged (SQLite synchronous=FULL, pg fsync on). Goal: SQLite >= 50% of raw. Five rounds
// (the next 200 seqs of each screen each time), each ratio against its own round's raw figure,
// and the median: on a shared 2-core box the raw figure swung 49-108k msgs/s between the rounds of
// one run (seven runs' counted rounds: 49-108k), and kept climbing past 20,000 messages as V8
// optimized the raw child, so five rounds, not three, after a warm-up round.
// Before them, round 0 runs the same way for every consumer and is not counted: the steady state is
// what sizes a NOC, and a first round times V8 compiling each consumer (and, for the archives, their
// first sight of the 100 screens), which a warm-up given to one side only would count against the other.
// All three use the ingest's default Receive Maximum and batch size. The ingest runs in this
// process with the V8 flags `serve` runs with (fleet/cli/node-flags.ts); the raw subscriber in a
// process of its own with node's defaults (raw-child.ts), so the baseline is not run with a flag
// chosen for the ingest.
//
// Beside the rates, what each costs in CPU a message (the consumer's process, all its threads: the
// event loop, sqlite3's worker, GC; mosquitto's; both from /proc for the raw child), and a
// fourth consumer: the ingest with an archive that writes nothing, its receive path alone (mqtt.js,
// decoding, batching, acks after "commit"), the ceiling no archive can lift it above. From those, the
// rate this machine's cores could carry at all: cores / (ingest CPU + broker CPU a message), set
// against the raw figure (docs/fleet.md, Figures).

const SCREENS = Number(process.env.BENCH_SCREENS ?? 100);
const PER_SCREEN = 200;
const ROUNDS = 5;
const PREFIX = 'signage';
/** The same plays in time order across the screens (as a real outage's backlog is), on a topic prefix of their own. */
const MIXED = 'mixed';

/** The raw baseline (raw-child.ts), in a child process with node's default flags; `pid` for its CPU. */
interface RawSession { readonly pid: number; connect(): Promise<void>; stop(): Promise<void>; reach(n: number): Promise<void>; dispose(): void }

function rawSession(url: string, receiveMaximum: number, prefix = PREFIX): RawSession {
  // Neither serve's V8 flags nor NODE_OPTIONS: the baseline runs as plain `node` would.
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const child = fork(fileURLToPath(new URL('./raw-child.js', import.meta.url)), [], { execArgv: [], env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let waiting: ((m: Record<string, unknown>) => void) | undefined;
  child.on('message', (m: Record<string, unknown>) => { const w = waiting; waiting = undefined; w?.(m); });
  const ask = (cmd: object): Promise<Record<string, unknown>> => new Promise((resolve, reject) => {
    waiting = (m) => (typeof m.error === 'string' ? reject(new Error(`raw subscriber: ${m.error}`)) : resolve(m));
    child.send(cmd);
  });
  return {
    pid: child.pid ?? 0,
    async connect() { await ask({ cmd: 'connect', url, clientId: `bench-raw-${prefix}`, topic: `$share/bench-raw/${prefix}/device/+/play`, receiveMaximum }); },
    async stop() { await ask({ cmd: 'stop' }); },
    async reach(n) { await ask({ cmd: 'reach', n }); },
    dispose() { child.kill(); },
  };
}

/** A consumer's config: its own client id and share group, a persistent session, the defaults otherwise. */
function benchConfig(url: string, db: string, name: string, dir: string, topicPrefix = PREFIX): FleetConfig {
  return parseFleetConfig({ db, mqtt: { url, clientId: `bench-${name}`, shareGroup: `bench-${name}`, sessionExpirySec: 3600, topicPrefix } }, dir);
}

/** What a drain waits on and starts and stops: a FleetService, or the receive path alone. */
interface Consumer {
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  drained(n: number): boolean;
  batches(): number;
  /** Messages it dropped (the priming probe is one). */
  bad(): number;
  state(): unknown;
}

/** A consumer made of `run` (what starts and stops it) over its batcher and ingest. */
function consumer(name: string, run: { start(): Promise<void>; stop(): Promise<void> }, batcher: Batcher, ingest: MqttIngest): Consumer {
  return {
    name,
    start: () => run.start(),
    stop: () => run.stop(),
    drained: (n) => batcher.totals.plays >= n && batcher.waiting === 0,
    batches: () => batcher.totals.batches,
    bad: () => ingest.counters.bad,
    state: () => ({ totals: batcher.totals, waiting: batcher.waiting, counters: ingest.counters }),
  };
}

/** `signage-fleet serve` as it runs: ingest and archive. */
function service(config: FleetConfig): Consumer {
  const fleet = new FleetService(config, silentLogger());
  return consumer(isPostgresUrl(config.db) ? 'PostgreSQL' : 'SQLite', fleet, fleet.batcher, fleet.ingest);
}

/**
 * The ingest's MqttIngest and Batcher as `serve` wires them, with an archive that keeps nothing and
 * returns at once: a measuring stick for the receive path, never a way to run the service.
 */
function receiveOnly(url: string, dir: string): Consumer {
  const config = benchConfig(url, path.join(dir, 'unused.db'), 'recv', dir);
  const log = silentLogger();
  const batcher = new Batcher(async (items) => ({ ...emptyStats(), plays: items.filter((i) => i.kind === 'play').length }), config.batch, log);
  const ingest = new MqttIngest(config.mqtt, undefined, batcher, log, config.batch.maxRows);
  return consumer('receive only', ingest, batcher, ingest);
}

/** Starts a consumer once so the broker holds its session and shared subscription; then stops it. */
async function prime(c: Consumer, probe: MqttClient, prefix = PREFIX): Promise<void> {
  await c.start();
  await waitFor(`${c.name} subscribed`, async () => {
    await probe.publishAsync(deviceTopic(prefix, 'probe', 'play'), 'probe', { qos: 1 });
    return c.bad() > 0;
  }, 20_000);
  await c.stop();
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

/** A drain's figures: its rate, and CPU a message of this process and of mosquitto. */
interface Drain { rate: number; batches: number; cpuUs: number; brokerUs: number }

export async function bench(): Promise<void> {
  // The ingest runs in this process, so this process needs the flags `serve` runs with; without
  // them, the section runs again in a child that has them (the raw baseline has its own process).
  const missing = missingServeFlags(process.execArgv, process.env.NODE_OPTIONS ?? '');
  if (missing.length > 0) {
    console.log(`(this section runs again in a child process with serve's node flags: ${SERVE_NODE_FLAGS.join(' ')})`);
    const child = spawn(process.execPath, [...SERVE_NODE_FLAGS, process.argv[1] ?? '', 'fleet-ingest'], { stdio: 'inherit' });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    if (code !== 0) throw new Error(`fleet-ingest with ${SERVE_NODE_FLAGS.join(' ')} exited ${code}`);
    return;
  }
  const N = SCREENS * PER_SCREEN;
  const broker = await startBroker();
  const mosquitto = childPid('mosquitto');
  const pg = await startPostgres(undefined, { fsync: true });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-fleet-'));
  const publisher = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
  const raws: RawSession[] = [];
  try {
    const pgUrl = await pg.createDb('bench');
    // A consumer is started once: priming and draining each get their own, on one session.
    const liteConfig = benchConfig(broker.url, path.join(dir, 'archive.db'), 'sqlite', dir);
    const lite = (): Consumer => service(liteConfig);
    const pgFleet = (): Consumer => service(benchConfig(broker.url, pgUrl, 'pg', dir));
    const recv = (): Consumer => receiveOnly(broker.url, dir);
    const liteMixed = (): Consumer => service(benchConfig(broker.url, path.join(dir, 'mixed.db'), 'sqlite-mixed', dir, MIXED));
    for (const c of [lite(), pgFleet(), recv()]) await prime(c, publisher);
    await prime(liteMixed(), publisher, MIXED);
    const { mqtt: { receiveMaximum }, batch: { maxRows } } = liteConfig;
    const raw = rawSession(broker.url, receiveMaximum);
    const rawMixed = rawSession(broker.url, receiveMaximum, MIXED);
    raws.push(raw, rawMixed);
    for (const r of [raw, rawMixed]) {
      await r.connect();
      await r.stop();
    }

    /**
     * Calls `start`, then waits for `finished`: the rate, and the CPU a message of the consumer (this
     * process, or the process `pid`) and of mosquitto.
     */
    const measured = async (start: () => Promise<void>, finished: () => Promise<void>, pid?: number): Promise<Omit<Drain, 'batches'>> => {
      const self0 = process.cpuUsage();
      const p0 = pid === undefined ? undefined : { pid, at: sample(pid) };
      const b0 = sample(mosquitto);
      const t0 = performance.now();
      await start();
      await finished();
      const s = (performance.now() - t0) / 1000;
      const self = process.cpuUsage(self0);
      const cpuUs = p0 ? (cpuSeconds(p0.at, sample(p0.pid)) * 1e6) / N : (self.user + self.system) / N;
      return { rate: N / s, cpuUs, brokerUs: (cpuSeconds(b0, sample(mosquitto)) * 1e6) / N };
    };
    const drain = async (c: Consumer): Promise<Drain> => {
      const m = await measured(() => c.start(), () => waitFor(`${c.name} drained`, () => c.drained(N), 300_000).catch((e: Error) => { throw new Error(`${e.message}: ${JSON.stringify(c.state())}`); }));
      const batches = c.batches();
      await c.stop();
      return { ...m, batches };
    };
    const f = (x: number): string => Math.round(x).toLocaleString('en-US');
    const pct = (x: number): string => `${Math.round(x * 100)} %`;
    const us = (x: number): string => `${x.toFixed(1)} µs`;
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const rounds: Array<{ raw: Drain; recv: Drain; lite: Drain; pg: Drain; rawMixed: Drain; liteMixed: Drain }> = [];
    console.log(`fleet ingest, ${f(N)} QoS 1 plays from ${SCREENS} screens a round (round 0 warms every consumer up and is not counted), drained from a queued backlog (receiveMaximum ${receiveMaximum}, batches of ≤ ${maxRows}):`);
    for (let r = 0; r <= ROUNDS; r++) {
      // Each screen's plays in a run of their own (the figure the goal is judged on), and the same
      // plays in time order across the screens, on their own prefix, for a second SQLite archive.
      const each = Array.from({ length: SCREENS }, (_, d) => plays(`bench-${String(d).padStart(3, '0')}`, `${String(d).padStart(16, '0')}`, Array.from({ length: PER_SCREEN }, (_, i) => r * PER_SCREEN + i + 1))).flat();
      const items = each.map((p) => ({ topic: deviceTopic(PREFIX, p.deviceId, 'play'), payload: encode('play', p) }));
      const mixed = [...each].sort((a, b) => a.seq - b.seq).map((p) => ({ topic: deviceTopic(MIXED, p.deviceId, 'play'), payload: encode('play', p) }));
      const p0 = performance.now();
      await publishAll(publisher, items);
      const pub = N / ((performance.now() - p0) / 1000);
      await publishAll(publisher, mixed);
      const rawDrain = async (s: typeof raw): Promise<Drain> => {
        const m = await measured(() => s.connect(), () => s.reach(N), s.pid);
        await s.stop();
        return { ...m, batches: 0 };
      };
      const round = { raw: await rawDrain(raw), recv: await drain(recv()), lite: await drain(lite()), pg: await drain(pgFleet()), rawMixed: await rawDrain(rawMixed), liteMixed: await drain(liteMixed()) };
      if (r > 0) rounds.push(round);
      const one = (name: string, d: Drain, base = round.raw): string => `${name} ${f(d.rate)}/s = ${pct(d.rate / base.rate)} (${d.batches} transactions)`;
      console.log(`  round ${r === 0 ? '0 (warm-up, not counted)' : r}: publish ${f(pub)}/s; raw ${f(round.raw.rate)}/s; ${one('receive only', round.recv)}; ${one('SQLite', round.lite)}; ${one('PostgreSQL', round.pg)}; in time order: raw ${f(round.rawMixed.rate)}/s, ${one('SQLite', round.liteMixed, round.rawMixed)}`);
    }
    const med = (k: keyof typeof rounds[number], m: keyof Drain): number => median(rounds.map((x) => x[k][m]));
    const ratio = (k: keyof typeof rounds[number], base: keyof typeof rounds[number] = 'raw'): number => median(rounds.map((x) => x[k].rate / x[base].rate));
    const liteRatio = ratio('lite');
    console.log(`  raw mqtt.js subscriber (counts only): median ${f(med('raw', 'rate'))} msgs/s`);
    console.log(`  ingest, receive path only (an archive that keeps nothing): median ${f(med('recv', 'rate'))} msgs/s; median ratio ${pct(ratio('recv'))} of raw`);
    console.log(`  ingest → SQLite (WAL, synchronous=FULL): median ${f(med('lite', 'rate'))} plays/s; median ratio ${pct(liteRatio)} of raw (goal ≥ 50 %: ${liteRatio >= 0.5 ? 'met' : 'not met'})`);
    console.log(`  ingest → PostgreSQL (local, fsync on): median ${f(med('pg', 'rate'))} plays/s; median ratio ${pct(ratio('pg'))} of raw`);
    console.log(`  ingest → SQLite, the backlog in time order across the screens: median ${f(med('liteMixed', 'rate'))} plays/s; median ratio ${pct(ratio('liteMixed', 'rawMixed'))} of raw on the same messages (each batch touches every screen's index pages)`);
    console.log('  CPU a message, medians (the consumer\'s process, all its threads | mosquitto):');
    for (const [k, name] of [['raw', 'raw subscriber'], ['recv', 'receive path only'], ['lite', 'ingest → SQLite'], ['pg', 'ingest → PostgreSQL (its server not counted)']] as const) {
      console.log(`    ${name.padEnd(46)} ${us(med(k, 'cpuUs')).padStart(8)} | ${us(med(k, 'brokerUs'))}`);
    }
    // What the cores could carry if every one were busy with this and nothing else: the most this
    // implementation could reach here, however its work were spread over threads (a worker-thread
    // writer was tried, and only moved the same work around: docs/fleet.md).
    const cores = os.availableParallelism();
    const ceiling = (cores * 1e6) / (med('lite', 'cpuUs') + med('lite', 'brokerUs'));
    console.log(`  CPU ceiling for ingest → SQLite on ${cores} cores: ${f(ceiling)} plays/s = ${pct(ceiling / med('raw', 'rate'))} of raw's median, with every core busy and nothing else running`);
  } finally {
    await publisher.endAsync().catch(() => undefined);
    for (const r of raws) r.dispose();
    await broker.dispose();
    await pg.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}
