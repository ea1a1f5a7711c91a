// A real Prometheus (Debian's `prometheus`) scrapes FleetMetrics over HTTP and evaluates
// fleet/prometheus/alerts.yml on what it scraped: the exposition, the content type and the
// rules' label matching work outside promtool's synthetic series too.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { deviceTopic, encode, heartbeat, statusOnline } from '../agent/protocol/index.js';
import { Archive } from '../fleet/archive/archive.js';
import { decodeMessage, type Item } from '../fleet/ingest/decode.js';
import { silentLogger } from '../fleet/log.js';
import { FleetMetrics } from '../fleet/metrics/metrics.js';
import { freePort, waitForPort } from './helpers/ports.js';
import { tempDir } from './helpers/tmp.js';
import { waitFor } from './helpers/wait.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** A message as a screen publishes it, through the ingest's own decoder. */
function item(id: string, kind: 'status' | 'heartbeat' | 'event', doc: unknown): Item {
  const d = decodeMessage('signage', deviceTopic('signage', id, kind), Buffer.from(encode(kind, doc as never)));
  if (!d.ok) throw new Error(`fixture does not decode: ${d.reason}`);
  return d.item;
}

interface Alert { labels: Record<string, string>; state: string }

t.test('Prometheus scrapes /metrics and evaluates the alert rules on it', async (t) => {
  const dir = tempDir(t, 'fleet-prom-');
  const archive = new Archive(path.join(dir, 'archive.db'), silentLogger());
  await archive.start();
  t.teardown(() => archive.stop());
  const now = Date.now();
  const applied = { groups: {}, overrides: { groups: {} } };
  await archive.setGroups({ 'hoan-kiem': ['lit', 'gone'] });
  await archive.write([
    item('lit', 'status', statusOnline({ session: 1, storeId: 's-lit', agentVersion: '0.1.0', bootedAt: now - 3600_000, applied })),
    item('lit', 'heartbeat', heartbeat({ now: now - 5_000, deviceId: 'lit', bootedAt: now - 3600_000, backlog: 2, fields: { storeId: 's-lit', cpuTempC: 58 } })),
    item('lit', 'event', { ts: new Date(now - 60_000).toISOString(), type: 'output-suspect', detail: { reason: 'frozen' } }),
  ]);

  // Prometheus runs on the wall clock; a generous stale limit keeps a slow start from turning lit stale.
  const metrics = new FleetMetrics(archive, { staleAfterSec: 3600 });
  const server = http.createServer((req, res) => {
    if (req.url !== '/metrics') return void res.writeHead(404).end();
    metrics.render().then((body) => res.writeHead(200, { 'content-type': metrics.contentType }).end(body), (e: Error) => res.writeHead(500).end(e.message));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const target = `127.0.0.1:${(server.address() as { port: number }).port}`;

  const port = await freePort();
  const config = path.join(dir, 'prometheus.yml');
  writeFileSync(config, JSON.stringify({
    global: { scrape_interval: '1s', evaluation_interval: '1s' },
    rule_files: [path.join(repo, 'fleet/prometheus/alerts.yml')],
    scrape_configs: [{ job_name: 'signage-fleet', static_configs: [{ targets: [target] }] }],
  }));
  const prom = spawn('prometheus', [`--config.file=${config}`, `--storage.tsdb.path=${path.join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  prom.stderr!.on('data', (d: Buffer) => { log = (log + d.toString()).slice(-4000); });
  const exited = new Promise((r) => prom.once('exit', r));
  t.teardown(async () => { prom.kill('SIGTERM'); await exited; });
  await waitForPort(port, 30_000).catch((e: Error) => { throw new Error(`${e.message}\n${log}`); });
  // The port opens before the TSDB is up: the API answers 503 "Service Unavailable" until /-/ready says 200 (seen in CI).
  await waitFor('prometheus ready', async () => (await fetch(`http://127.0.0.1:${port}/-/ready`).catch(() => undefined))?.status === 200, 30_000);

  const api = async <T>(p: string): Promise<T> => {
    const r = await fetch(`http://127.0.0.1:${port}/api/v1/${p}`);
    if (!r.ok) throw new Error(`prometheus ${p}: HTTP ${r.status} ${await r.text()}`);
    return ((await r.json()) as { data: T }).data;
  };
  const query = async (q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> =>
    (await api<{ result: { metric: Record<string, string>; value: [number, string] }[] }>(`query?query=${encodeURIComponent(q)}`)).result;

  await waitFor('a scrape of signage-fleet', async () => (await query('up{job="signage-fleet"} == 1')).length === 1, 30_000);
  const up = await query('signage_device_up');
  t.same(Object.fromEntries(up.map((s) => [s.metric.device, s.value[1]])), { lit: '1', gone: '0' }, 'scraped: lit is up, gone (groups map only) is down');
  t.same((await query('signage_device_backlog{device="lit"}'))[0]?.value[1], '2');
  const byGroup = await query('sum by (group) (signage_device_up * on(device) group_right signage_device_group)');
  t.same(Object.fromEntries(byGroup.map((s) => [s.metric.group, s.value[1]])), { all: '1', 'hoan-kiem': '1' }, 'the documented group join');

  const groups = await api<{ groups: { rules: { name: string; health: string }[] }[] }>('rules');
  const rules = groups.groups.flatMap((g) => g.rules);
  t.equal(rules.length, 10, 'all rules loaded');
  t.same(rules.filter((r) => r.health !== 'ok' && r.health !== 'unknown'), [], 'no rule fails to evaluate');

  let alerts: Alert[] = [];
  await waitFor('the rules evaluated on scraped series', async () => {
    alerts = (await api<{ alerts: Alert[] }>('alerts')).alerts;
    return alerts.some((a) => a.labels.alertname === 'ScreenOutputSuspect') && alerts.some((a) => a.labels.alertname === 'ScreenOffline');
  }, 30_000);
  const of = (name: string): string[] => alerts.filter((a) => a.labels.alertname === name).map((a) => `${a.labels.device}:${a.state}`);
  t.same(of('ScreenOutputSuspect'), ['lit:firing'], 'no `for`: fires at the first evaluation');
  t.same(of('ScreenOffline'), ['gone:pending'], 'the screen never seen is offline, pending its 5 minutes; lit is not');
});
