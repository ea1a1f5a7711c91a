// signage-fleet's ingest against a real mosquitto and a real SQLite archive: plays as agents
// publish them land once each, seq gaps and replaced stores are recorded, junk is counted.
import t from 'tap';
import { deviceTopic, encode, heartbeat, statusOnline, statusOffline } from '../agent/protocol/index.js';
import { count, fleetStage, plays, publishPlays } from './helpers/fleet-rig.js';
import { waitFor } from './helpers/wait.js';

t.test('plays sent twice land once each; status and heartbeat fill the devices row; junk is counted, never fatal', async (t) => {
  const { fleet, screen } = await fleetStage(t, 'ingest-a');

  const evs = plays('hn-1', 'aaaa000000000001', Array.from({ length: 200 }, (_, i) => i + 1));
  await publishPlays(screen, evs);
  await publishPlays(screen, evs.slice(50, 150)); // the outbox resends what lost its PUBACK
  const st = statusOnline({ session: 3, storeId: 'aaaa000000000001', agentVersion: '0.1.0', bootedAt: Date.parse('2026-12-05T00:00:00Z'), applied: { groups: {}, overrides: { groups: {} } } });
  await screen.publishAsync(deviceTopic('signage', 'hn-1', 'status'), encode('status', st), { qos: 1, retain: true });
  // A late Will of an older session does not overwrite the newer birth.
  await screen.publishAsync(deviceTopic('signage', 'hn-1', 'status'), encode('status', statusOffline(2)), { qos: 1 });
  const hb = heartbeat({ now: Date.parse('2026-12-05T05:00:00Z'), deviceId: 'hn-1', bootedAt: Date.parse('2026-12-05T00:00:00Z'), backlog: 0,
    fields: { storeId: 'aaaa000000000001', compliance: [{ campaignId: 'spot', day: '2026-12-05', played: 200, target: 10, onTrack: true }] } });
  await screen.publishAsync(deviceTopic('signage', 'hn-1', 'heartbeat'), encode('heartbeat', hb), { qos: 0 });
  // Hostile: not JSON, wrong shape, a play naming another screen, 300 KiB, a bad eventId.
  const spoof = plays('hn-2', 'bbbb000000000001', [1])[0]!;
  const badId = { ...plays('hn-1', 'aaaa000000000001', [999])[0]!, eventId: 'hn-1:x:1' };
  await screen.publishAsync(deviceTopic('signage', 'hn-1', 'play'), '{not json', { qos: 1 });
  await screen.publishAsync(deviceTopic('signage', 'hn-1', 'play'), JSON.stringify({ seq: 'one' }), { qos: 1 });
  await screen.publishAsync(deviceTopic('signage', 'hn-1', 'play'), encode('play', spoof), { qos: 1 });
  await screen.publishAsync(deviceTopic('signage', 'hn-1', 'play'), JSON.stringify(badId), { qos: 1 });
  await screen.publishAsync(deviceTopic('signage', 'hn-1', 'event'), 'x'.repeat(300 * 1024), { qos: 1 });
  await screen.publishAsync(deviceTopic('signage', 'hn-1', 'event'), encode('event', { ts: '2026-12-05T05:00:01.000Z', type: 'applied', detail: { version: 1 } }), { qos: 1 });

  await waitFor('all messages handled', () => fleet.ingest.counters.bad >= 6 && fleet.batcher.waiting === 0 && fleet.batcher.totals.plays >= 200, 20_000);
  await waitFor('event archived', async () => (await fleet.archive.read((q) => count(q, 'SELECT COUNT(*) AS n FROM events'))) === 1);
  await fleet.archive.read(async (q) => {
    t.equal(await count(q, 'SELECT COUNT(*) AS n FROM plays'), 200, '200 plays, each once');
    t.equal(await count(q, 'SELECT COUNT(DISTINCT seq) AS n FROM plays'), 200);
    t.equal(await count(q, 'SELECT COUNT(*) AS n FROM seq_gaps'), 0, 'no gap');
    t.equal(await count(q, "SELECT COUNT(*) AS n FROM plays WHERE device_id = 'hn-2'"), 0, 'the spoofed play is not archived');
    const dev = await q.get<{ status_online: number; status_session: number; store_id: string; heartbeat_at: string }>("SELECT * FROM devices WHERE device_id = 'hn-1'");
    t.equal(dev?.status_online, 1, 'the late Will of session 2 did not overwrite session 3');
    t.equal(dev?.status_session, 3);
    t.equal(dev?.store_id, 'aaaa000000000001');
    t.equal(dev?.heartbeat_at, '2026-12-05T05:00:00.000Z');
    t.equal(await count(q, "SELECT played AS n FROM compliance WHERE device_id = 'hn-1'"), 200, 'compliance from the newest word');
  });
  t.ok(fleet.batcher.totals.duplicates >= 100, `the resent 100 were duplicates (${fleet.batcher.totals.duplicates})`);
  t.equal(fleet.ingest.counters.bad, 6, `5 hostile messages and the probe counted: ${JSON.stringify(fleet.ingest.counters.badByReason)}`);
  t.ok(fleet.ingest.connected, 'still connected');
});

t.test('a seq gap is recorded as loss and filled by a late arrival; a new storeId is a replaced store', async (t) => {
  const { fleet, screen } = await fleetStage(t, 'ingest-g');
  const gaps = (): Promise<Array<{ store_id: string; lo: number; hi: number }>> =>
    fleet.archive.read((q) => q.all("SELECT store_id, lo, hi FROM seq_gaps WHERE device_id = 'hn-3' ORDER BY store_id, lo"));

  await publishPlays(screen, plays('hn-3', 'cccc000000000001', [1, 2, 3, 7, 8]));
  await waitFor('5 plays', () => fleet.batcher.totals.plays >= 5);
  t.same(await gaps(), [{ store_id: 'cccc000000000001', lo: 4, hi: 6 }], 'seqs 4-6 missing');
  await publishPlays(screen, plays('hn-3', 'cccc000000000001', [5]));
  await waitFor('late play', () => fleet.batcher.totals.plays >= 6);
  t.same(await gaps(), [{ store_id: 'cccc000000000001', lo: 4, hi: 4 }, { store_id: 'cccc000000000001', lo: 6, hi: 6 }], 'the late 5 split the gap');
  await publishPlays(screen, plays('hn-3', 'cccc000000000001', [4, 6]));
  await waitFor('gap filled', async () => (await gaps()).length === 0);
  t.pass('4 and 6 filled the gap');

  // A replaced SD card: a new storeId, seq from 1 again.
  await publishPlays(screen, plays('hn-3', 'dddd000000000002', [1, 2]));
  await waitFor('new store plays', () => fleet.batcher.totals.plays >= 10);
  const changes = await fleet.archive.read((q) => q.all<{ previous_store_id: string; store_id: string; source: string }>("SELECT previous_store_id, store_id, source FROM store_changes WHERE device_id = 'hn-3'"));
  t.same(changes, [{ previous_store_id: 'cccc000000000001', store_id: 'dddd000000000002', source: 'play' }], 'store replaced, recorded once');
  t.same(await gaps(), [], 'the new store starts at 1: no gap');
  t.equal(await fleet.archive.read((q) => count(q, "SELECT COUNT(*) AS n FROM plays WHERE device_id = 'hn-3'")), 10, 'both stores\' plays kept (eventIds differ)');
});

t.test('stopped and started again, the same service takes plays and serves its page', async (t) => {
  const { fleet, screen } = await fleetStage(t, 'ingest-restart', { http: { port: 0 } });
  await publishPlays(screen, plays('rs-1', 'cccc000000000001', [1, 2, 3]));
  await waitFor('first plays archived', () => fleet.batcher.totals.plays >= 3);
  await fleet.stop();
  // While it is down the broker keeps its session's share: these wait there, not lost.
  await publishPlays(screen, plays('rs-1', 'cccc000000000001', [4, 5]));
  await fleet.start();
  await waitFor('ingest connected again', () => fleet.ingest.connected);
  await publishPlays(screen, plays('rs-1', 'cccc000000000001', [6]));
  await waitFor('the plays sent while down and after archived', async () => (await fleet.archive.read((q) => count(q, 'SELECT COUNT(*) AS n FROM plays'))) === 6, 20_000);
  t.same(await fleet.archive.read((q) => q.all("SELECT seq FROM plays WHERE device_id = 'rs-1' ORDER BY seq")), [1, 2, 3, 4, 5, 6].map((seq) => ({ seq })), 'each play once, none lost across the restart');
  const res = await fetch(`${fleet.http!.url}/api/grid`);
  t.equal(res.status, 200, 'the NOC page listens again');
});
