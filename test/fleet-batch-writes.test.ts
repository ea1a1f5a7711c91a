// The ingest's batches as sets (issue 11's ingest rate): how a set is cut into statements, one
// batch mixing many screens written in a few statements with the same outcome as one a row, the
// group-commit timing, and the ingest holding back a broker that floods it (mosquitto 2.0.11 sends
// a reconnected session's whole backlog at once, past our Receive Maximum).
import { execFileSync } from 'node:child_process';
import t from 'tap';
import { deviceTopic, encode, statusOffline, statusOnline } from '../agent/protocol/index.js';
import { Archive } from '../fleet/archive/archive.js';
import { chunksFor, placeholders } from '../fleet/archive/rows.js';
import { emptyStats, type BatchStats } from '../fleet/archive/writes.js';
import { Batcher } from '../fleet/ingest/batcher.js';
import { decodeMessage, type Item } from '../fleet/ingest/decode.js';
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
  t.same(chunksFor('sqlite', rows, 2, 2).map((c) => c.length), [5000], 'parameters besides the rows count against the limit…');
  t.same(chunksFor('sqlite', Array.from({ length: 16_383 }, (_, i) => i), 2, 2).map((c) => c.length), [16_382, 1], '…so a full chunk leaves room for them');
  t.equal(placeholders(2, 3), '(?, ?, ?), (?, ?, ?)');
});

const playItem = (p: ReturnType<typeof plays>[number]): Item => ({ kind: 'play', deviceId: p.deviceId, play: p, raw: JSON.stringify(p) });

t.test('a play\'s columns are the validated play\'s, whatever its strings hold; payload is the bytes as received', async (t) => {
  const dir = tempDir(t, 'cols-');
  const archive = new Archive(`${dir}/a.db`, silentLogger());
  await archive.start();
  t.teardown(() => archive.stop());
  const odd: Record<string, string> = { quotes: 'a"b\\c\'d', unicode: 'ünï ✓ 😀', nul: 'x\u0000y', separator: '\u2028', surrogate: 'lone \ud800 x', text: 'back\\ud800slash' };
  const items: Item[] = [];
  for (const [i, campaignId] of Object.values(odd).entries()) {
    const raw = encode('play', plays('odd-1', 'S', [i + 1], { campaignId })[0]!);
    const d = decodeMessage('signage', deviceTopic('signage', 'odd-1', 'play'), Buffer.from(raw));
    if (!d.ok) throw new Error(d.reason);
    items.push(d.item);
  }
  // A repeated key: JSON.parse keeps the last deviceId (the topic's), so the play validates as odd-1's;
  // a reader taking the first would file it under victim-1.
  const forged = encode('play', plays('odd-1', 'S', [99])[0]!).replace('{', '{"deviceId":"victim-1","campaignId":"forged",');
  const d = decodeMessage('signage', deviceTopic('signage', 'odd-1', 'play'), Buffer.from(forged));
  if (!d.ok) throw new Error(d.reason);
  items.push(d.item);
  t.equal((await archive.write(items)).plays, 7);
  const rows = await archive.read((q) => q.all<Record<string, unknown>>('SELECT * FROM plays ORDER BY seq'));
  const want = items.map((it) => {
    const p = (it as Item & { kind: 'play' }).play;
    // What binding each string gave: UTF-8, a lone surrogate as U+FFFD.
    const utf8 = (s: string): string => Buffer.from(s).toString();
    return { event_id: p.eventId, device_id: p.deviceId, store_id: p.storeId, seq: p.seq, campaign_id: utf8(p.campaignId), day: p.day, started_at: p.startedAt, ended_at: p.endedAt,
      duration_ms: p.durationMs, outcome: p.outcome, in_window: 1, played: p.played, target: p.target, payload: it.raw };
  });
  t.same(rows.map(({ received_at: _r, ingest_id: _i, ...r }) => r), want, 'each column as the play validated, types included; payload byte for byte');
  t.equal(rows[1]?.campaign_id, 'ünï ✓ 😀');
  t.equal(rows[4]?.campaign_id, 'lone \ufffd x', 'a lone surrogate stored as U+FFFD, not as three invalid bytes');
  t.equal(rows[5]?.campaign_id, 'back\\ud800slash', 'a backslash and "ud" in the text itself is kept');
  t.same({ device: rows[6]?.device_id, campaign: rows[6]?.campaign_id }, { device: 'odd-1', campaign: 'spot' }, 'the repeated key: filed under the topic\'s screen with the validated values');
  t.ok(rows.every((r) => typeof r.seq === 'number' && typeof r.in_window === 'number' && typeof r.duration_ms === 'number'), 'numbers stored as numbers');
});

t.test('a batch part archived already (a redelivery): only the new plays count, and only they move compliance and seqs', async (t) => {
  const dir = tempDir(t, 'redeliver-');
  const archive = new Archive(`${dir}/a.db`, silentLogger());
  await archive.start();
  t.teardown(() => archive.stop());
  await archive.write([...plays('r-1', 'S', [1, 2, 3]), ...plays('r-2', 'T', [1])].map(playItem));
  // Old and new interleaved, one new play twice, seq 5 missing: 4, 6 and r-2's 2 are new.
  const again = [...plays('r-1', 'S', [2, 4, 3, 6, 4]), ...plays('r-2', 'T', [1, 2])].map(playItem);
  t.same(await archive.write(again), { ...emptyStats(), plays: 3, duplicates: 4, gapsOpened: 1 }, '3 new, 4 duplicates (one within the batch), the gap at 5');
  await archive.read(async (q) => {
    t.same(await q.all("SELECT seq FROM plays WHERE device_id = 'r-1' ORDER BY seq"), [1, 2, 3, 4, 6].map((seq) => ({ seq })), 'each play once');
    t.same(await q.all("SELECT lo, hi FROM seq_gaps WHERE device_id = 'r-1'"), [{ lo: 5, hi: 5 }]);
    t.same(await q.all("SELECT device_id, played FROM compliance ORDER BY device_id"), [{ device_id: 'r-1', played: 6 }, { device_id: 'r-2', played: 2 }], 'compliance from the newest new play');
  });
  t.same(await archive.write(again), { ...emptyStats(), duplicates: 7 }, 'all of it again: nothing new');
});

t.test('a new SQLite archive has 16 KiB pages; one made before keeps its 4 KiB pages and takes plays; both writers cache 64 MiB', async (t) => {
  const dir = tempDir(t, 'pages-');
  const fresh = new Archive(`${dir}/new.db`, silentLogger());
  await fresh.start();
  t.teardown(() => fresh.stop());
  t.same(await fresh.read((q) => q.get('PRAGMA page_size')), { page_size: 16384 });
  // Negative: KiB, whatever the page size (positive would be pages, 4x smaller on the old file).
  t.same(await fresh.read((q) => q.get('PRAGMA cache_size')), { cache_size: -65536 }, 'a 64 MiB page cache');
  execFileSync('sqlite3', [`${dir}/old.db`, 'PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; CREATE TABLE before_us (x);']);
  const old = new Archive(`${dir}/old.db`, silentLogger());
  await old.start();
  t.teardown(() => old.stop());
  t.same(await old.read((q) => q.get('PRAGMA page_size')), { page_size: 4096 }, 'an existing file keeps its pages');
  t.same(await old.read((q) => q.get('PRAGMA cache_size')), { cache_size: -65536 }, 'and the same 64 MiB cache');
  t.equal((await old.write(plays('p-1', 'S', [1, 2]).map(playItem))).plays, 2);
});

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

  // Later, a fourth store: it replaced the newest of the three the archive has (C), not the first.
  const later = await archive.write(plays('s-0', 'D', [1]).map(playItem));
  t.equal(later.storesReplaced, 1);
  t.same(await archive.read((q) => q.all("SELECT previous_store_id AS p, store_id AS s FROM store_changes WHERE device_id = 's-0' AND store_id = 'D'")),
    [{ p: 'C', s: 'D' }], 'C→D: the newest store the archive had');
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
