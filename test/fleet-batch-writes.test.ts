// The ingest's batches as sets (issue 11's ingest rate): how a set is cut into statements, one
// batch mixing many screens written in a few statements with the same outcome as one a row, the
// group-commit timing, and the ingest holding back a broker that floods it (mosquitto 2.0.11 sends
// a reconnected session's whole backlog at once, past our Receive Maximum).
import t from 'tap';
import { statusOffline, statusOnline } from '../agent/protocol/index.js';
import { Archive } from '../fleet/archive/archive.js';
import { chunksFor, placeholders } from '../fleet/archive/rows.js';
import { emptyStats, type BatchStats } from '../fleet/archive/writes.js';
import { Batcher } from '../fleet/ingest/batcher.js';
import type { Item } from '../fleet/ingest/decode.js';
import { silentLogger } from '../fleet/log.js';
import { count, fleetStage, plays, publishPlays, startFleet } from './helpers/fleet-rig.js';
import { tempDir } from './helpers/tmp.js';
import { waitFor } from './helpers/wait.js';

t.test('a set is cut into statements within each engine\'s parameter limit, rows in order', async (t) => {
  const rows = Array.from({ length: 5000 }, (_, i) => i);
  const lite = chunksFor('sqlite', rows, 16);
  t.same(lite.map((c) => c.length), [2047, 2047, 906], 'SQLite: as few statements as 32,766 parameters allow');
  const pg = chunksFor('postgres', rows.slice(0, 500), 16);
  t.same(pg.map((c) => c.length), [256, 128, 64, 32, 16, 4], 'pg: power-of-two chunks, a handful of statement shapes');
  t.ok(pg.every((c) => c.length * 16 <= 8192), 'each pg chunk within 8,192 parameters');
  t.same(lite.flat(), rows, 'nothing lost or reordered');
  t.same(pg.flat(), rows.slice(0, 500));
  t.same(chunksFor('postgres', [], 3), [], 'an empty set is no statement');
  t.equal(placeholders(2, 3), '(?, ?, ?), (?, ?, ?)');
});

const playItem = (p: ReturnType<typeof plays>[number]): Item => ({ kind: 'play', deviceId: p.deviceId, play: p, raw: JSON.stringify(p) });

t.test('one batch of many screens: duplicates, gaps, stores replaced twice, statuses by session', async (t) => {
  const dir = tempDir(t, 'batch-');
  const archive = new Archive(`${dir}/a.db`, silentLogger());
  await archive.start();
  t.teardown(() => archive.stop());
  // Earlier: screen s-0 knew store A with seqs 1..3.
  await archive.write(plays('s-0', 'A', [1, 2, 3]).map(playItem));

  // One batch, interleaved as a shared subscription deals it: 300 screens' plays, seq 2 missing on
  // each, a play repeated inside the batch, and s-0 moving to store B then C in the same batch.
  const items: Item[] = [];
  for (const seq of [1, 3, 4]) for (let d = 1; d <= 300; d++) items.push(...plays(`s-${d}`, `st-${d}`, [seq]).map(playItem));
  items.push(...plays('s-7', 'st-7', [4]).map(playItem));
  items.push(...plays('s-0', 'B', [1]).map(playItem), ...plays('s-0', 'C', [1, 2]).map(playItem));
  const on = (session: number, storeId: string): Item => ({ kind: 'status', deviceId: 's-9', status: statusOnline({ session, storeId, agentVersion: '0.1.0', bootedAt: 0, applied: { groups: {}, overrides: { groups: {} } } }), raw: '{}' } as Item);
  items.push(on(5, 'st-9'), { kind: 'status', deviceId: 's-9', status: statusOffline(4), raw: '{}' } as Item, { kind: 'status', deviceId: 's-9', status: statusOffline(5), raw: '{"late":1}' } as Item);
  const stats = await archive.write(items);
  t.same(stats, { ...emptyStats(), plays: 903, duplicates: 1, statuses: 3, gapsOpened: 300, storesReplaced: 2 }, 'what the batch changed, counted once each');

  await archive.read(async (q) => {
    t.equal(await count(q, 'SELECT COUNT(*) AS n FROM plays'), 906, 'every play once');
    t.equal(await count(q, "SELECT COUNT(*) AS n FROM seq_gaps WHERE lo = 2 AND hi = 2"), 300, 'each screen\'s missing seq 2 is one gap');
    t.same(await q.all("SELECT previous_store_id AS p, store_id AS s, source FROM store_changes WHERE device_id = 's-0' ORDER BY id"),
      [{ p: 'A', s: 'B', source: 'play' }, { p: 'B', s: 'C', source: 'play' }], 'A→B, then B→C: each new store replaced the one before it');
    t.equal(await count(q, "SELECT max_seq AS n FROM stores WHERE device_id = 's-0' AND store_id = 'C'"), 2);
    t.equal(await count(q, "SELECT played AS n FROM compliance WHERE device_id = 's-5'"), 4, 'compliance from each screen\'s newest play');
    const s9 = await q.get<{ status_session: number; status_online: number; status_json: string; store_id: string }>("SELECT status_session, status_online, status_json, store_id FROM devices WHERE device_id = 's-9'");
    t.same(s9, { status_session: 5, status_online: 0, status_json: '{"late":1}', store_id: 'st-9' }, 'session 5\'s last word kept, the store its online status named, session 4 ignored');
  });

  // The same batch again: all duplicates, nothing else changes.
  const again = await archive.write(items);
  t.equal(again.plays, 0);
  t.equal(again.duplicates, 904);
  t.equal(again.gapsOpened, 0);
  t.equal(again.storesReplaced, 0);
});

t.test('group commit: a batch that fills up goes at once; a lone message waits for its maxDelayMs (or the drain)', async (t) => {
  // Ordered, not timed: maxDelayMs is 10 minutes, longer than any wait here, so a full batch that
  // waited for its first message's delay (as it once did) is never written and the wait fails.
  const written: number[] = [];
  const b = new Batcher(async (items): Promise<BatchStats> => { written.push(items.length); return emptyStats(); }, { maxRows: 10, maxDelayMs: 600_000 }, silentLogger());
  const item = { kind: 'event', deviceId: 'd-1', event: { ts: '2026-12-05T00:00:00.000Z', type: 'applied' }, raw: '{}' } as unknown as Item;
  for (let i = 0; i < 10; i++) b.add({ item });
  await waitFor('the full batch written while its first message\'s 10-minute delay runs', () => written.length === 1);
  b.add({ item });
  t.same(written, [10], 'the lone message is not written with it');
  await b.drain();
  t.same(written, [10, 1], 'the lone message went with the drain, in a batch of its own');

  // whenBelow: resolves only once a commit has taken messages away.
  const slow = new Batcher(async (): Promise<BatchStats> => { await new Promise((r) => setTimeout(r, 200)); return emptyStats(); }, { maxRows: 5, maxDelayMs: 0 }, silentLogger());
  for (let i = 0; i < 12; i++) slow.add({ item });
  let freed = false;
  const room = slow.whenBelow(8).then(() => { freed = true; });
  t.notOk(freed, 'held while 12 wait');
  await room;
  t.ok(slow.waiting < 8, `freed with ${slow.waiting} waiting`);
  await slow.drain();
});

t.test('a broker that sends a whole backlog at once is held back at the high-water mark; nothing lost', async (t) => {
  const { fleet, screen } = await fleetStage(t, 'ingest-flood');
  const config = { ...fleet.config, mqtt: { ...fleet.config.mqtt, receiveMaximum: 100 }, batch: { maxRows: 50, maxDelayMs: 20 } };
  await fleet.stop();
  // mosquitto 2.0.11 (Debian 12) honours Receive Maximum only until the first PUBACKs of a
  // reconnected session, then sends the rest: without the hold, ~3,000 would wait here.
  const N = 3000;
  await publishPlays(screen, Array.from({ length: 30 }, (_, d) => plays(`fl-${d}`, `flood-${d}`, Array.from({ length: N / 30 }, (_, i) => i + 1))).flat());
  const again = await startFleet(t, config);
  let most = 0;
  const watch = setInterval(() => { most = Math.max(most, again.batcher.waiting); }, 1);
  t.teardown(() => clearInterval(watch));
  await waitFor('the backlog archived', () => again.batcher.totals.plays >= N && again.batcher.waiting === 0, 60_000);
  clearInterval(watch);
  t.ok(again.ingest.counters.held > 0, `the ingest stopped reading ${again.ingest.counters.held} times`);
  t.ok(most <= 100, `at most the high-water mark (100) waited in the process: ${most}`);
  t.equal(await again.archive.read((q) => count(q, 'SELECT COUNT(*) AS n FROM plays')), N, 'every play once');
});
