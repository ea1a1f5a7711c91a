// A real agent (dist/agent/main.js, headless mpv) and the fleet ingest on one mosquitto: the
// agent's plays, status and heartbeats land in the archive. Nobody subscribes to '#': the fleet's
// shared '+/play' subscription is the only listener, as at a NOC.
import t from 'tap';
import { deviceTopic, groupTopic } from '../agent/protocol/index.js';
import { AgentProcess } from './helpers/agent-proc.js';
import { e2eClips, windowFromNow } from './helpers/e2e.js';
import { count, fleetConfig, screenClient, startFleet } from './helpers/fleet-rig.js';
import { startBroker } from './helpers/mosquitto.js';
import { tempDir } from './helpers/tmp.js';
import { waitFor } from './helpers/wait.js';

t.test('a real agent\'s plays, status and heartbeats land in the archive', async (t) => {
  const broker = await startBroker(t);
  const dir = tempDir(t, 'fleet-agent-');
  const fleet = await startFleet(t, fleetConfig(dir, broker.url, 'ingest-e2e', { groups: { 'site-1': ['fa-1'] } }));
  await waitFor('ingest connected', () => fleet.ingest.connected);
  const ops = await screenClient(t, broker.url);
  const clips = await e2eClips();
  const w = windowFromNow(4000, 600);
  await ops.publishAsync(groupTopic('signage', 'all', 'assignment'), JSON.stringify({
    version: 1,
    campaigns: [{ id: 'spot', media: { ...clips.spot, durationMs: 2000 }, timesPerDay: 120, windows: [w.window] }],
    loop: [clips.loop],
  }), { qos: 1, retain: true });
  const agent = new AgentProcess(dir, 'fa-1', broker.url).register(t);
  agent.start();

  const q = <T>(fn: Parameters<typeof fleet.archive.read<T>>[0]): Promise<T> => fleet.archive.read(fn);
  await waitFor('three completed plays archived', async () => (await q((d) => count(d, "SELECT COUNT(*) AS n FROM plays WHERE device_id = 'fa-1' AND outcome = 'completed'"))) >= 3, 60_000);
  await waitFor('a heartbeat with compliance', async () => (await q((d) => count(d, "SELECT COUNT(*) AS n FROM compliance WHERE device_id = 'fa-1'"))) >= 1, 30_000);
  const dev = await q((d) => d.get<{ store_id: string; status_online: number; status_session: number; heartbeat_at: string | null }>("SELECT * FROM devices WHERE device_id = 'fa-1'"));
  t.equal(dev?.status_online, 1, 'the birth message (retained status) is archived');
  t.match(dev?.store_id, /^[0-9a-f]{16}$/, 'the storeId from status/heartbeat');
  t.ok(dev?.heartbeat_at, 'a heartbeat is archived');
  const rows = await q((d) => d.all<{ event_id: string; store_id: string; seq: number; target: number }>("SELECT event_id, store_id, seq, target FROM plays WHERE device_id = 'fa-1' ORDER BY seq"));
  t.same(rows.map((r) => r.seq), rows.map((_, i) => i + 1), 'seq from 1, gapless');
  for (const r of rows) t.equal(r.event_id, `fa-1:${dev?.store_id}:${r.seq}`, `eventId ${r.event_id}`);
  t.equal(rows[0]?.target, 120, 'the target the screen planned');
  t.equal(await q((d) => count(d, 'SELECT COUNT(*) AS n FROM seq_gaps')), 0, 'no loss');
  t.equal(fleet.ingest.counters.bad, 0, 'every agent message decodes with the protocol schemas');
  t.equal(await agent.stop(), 0, 'agent stops cleanly');
  await waitFor('the clean stop\'s offline status', async () => (await q((d) => count(d, "SELECT status_online AS n FROM devices WHERE device_id = 'fa-1'"))) === 0, 15_000);
  t.pass(`topic of record: ${deviceTopic('signage', '+', 'play')} through $share/${fleet.config.mqtt.shareGroup}`);
});
