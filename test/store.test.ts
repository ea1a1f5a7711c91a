import t from 'tap';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { SqliteStore } from '../agent/store/sqlite-store.js';
import { migrations } from '../agent/store/migrations.js';
import { silentLogger } from '../agent/core/log.js';
import type { PlayStart } from '../agent/store/store.js';
import { tempDir, type Teardown } from './helpers/tmp.js';

const tempFile = (t: Teardown): string => path.join(tempDir(t, 'store-'), 'agent.db');

async function open(file: string): Promise<SqliteStore> {
  const s = new SqliteStore({ file, log: silentLogger() });
  await s.start();
  return s;
}

const start = (over: Partial<PlayStart> = {}): PlayStart => ({
  campaignId: 'c1',
  mediaSha256: 'a'.repeat(64),
  day: '2024-08-15',
  scheduledAt: 1000,
  startedAt: 1010,
  inWindow: true,
  display: 'unknown',
  clockSynced: true,
  ...over,
});

t.test('schema is migrated, WAL with synchronous=FULL', async (t) => {
  const file = tempFile(t);
  const s = await open(file);
  await s.stop();
  const out = execFileSync('sqlite3', [file, 'PRAGMA user_version; PRAGMA journal_mode;']).toString().trim().split('\n');
  t.equal(out[0], String(migrations.at(-1)!.version), 'at the latest migration');
  t.equal(out[1], 'wal');
  // reopening an up-to-date store is a no-op
  const again = await open(file);
  t.equal(await again.outboxCount(), 0);
  await again.stop();
});

t.test('a newer schema than the code knows is refused, not touched', async (t) => {
  const file = tempFile(t);
  execFileSync('sqlite3', [file, 'PRAGMA user_version = 99;']);
  const s = new SqliteStore({ file, log: silentLogger() });
  await t.rejects(s.start(), /newer than this agent/);
});

t.test('play lifecycle: seq rises, event queued in the same transaction, counts only completed in-window', async (t) => {
  const s = await open(tempFile(t));
  t.teardown(() => s.stop());
  const a = await s.recordPlayStart(start());
  const ev1 = await s.recordPlayEnd(a, { endedAt: 31_010, durationMs: 30_000, outcome: 'completed', target: 10 }, 'dev-1');
  t.equal(ev1.seq, 1);
  t.match(s.storeId(), /^[0-9a-f]{16}$/, 'a random storeId made with the store');
  t.equal(ev1.storeId, s.storeId());
  t.equal(ev1.eventId, `dev-1:${s.storeId()}:1`, 'eventId is deviceId:storeId:seq');
  t.equal(ev1.played, 1);
  t.equal(ev1.target, 10);
  t.equal(ev1.startedAt, new Date(1010).toISOString());
  const b = await s.recordPlayStart(start({ startedAt: 40_000 }));
  const ev2 = await s.recordPlayEnd(b, { endedAt: 45_000, durationMs: 5000, outcome: 'interrupted', target: 10 }, 'dev-1');
  t.equal(ev2.seq, 2);
  t.equal(ev2.played, 1, 'interrupted does not count');
  const c = await s.recordPlayStart(start({ startedAt: 50_000, inWindow: false }));
  await s.recordPlayEnd(c, { endedAt: 80_000, durationMs: 30_000, outcome: 'completed', target: 10 }, 'dev-1');
  t.same([...(await s.countCompleted('2024-08-15'))], [['c1', 1]], 'out-of-window play not counted');
  await t.rejects(s.recordPlayEnd(a, { endedAt: 1, durationMs: 1, outcome: 'completed', target: 10 }, 'dev-1'), /already ended/);
  const box = await s.outboxPeek(10);
  t.same(box.map((r) => JSON.parse(r.payload).seq), [1, 2, 3]);
  t.same(box.map((r) => r.kind), ['play', 'play', 'play']);
});

t.test('a crash mid-play leaves an open row that the next start closes as interrupted; counters survive', async (t) => {
  const file = tempFile(t);
  const s1 = await open(file);
  t.equal(await s1.nextSession(), 1);
  const done = await s1.recordPlayStart(start());
  await s1.recordPlayEnd(done, { endedAt: 31_010, durationMs: 30_000, outcome: 'completed', target: 10 }, 'd');
  await s1.recordPlayStart(start({ startedAt: 100_000 }));
  // no stop(): simulate a power cut by opening the file anew
  const s2 = await open(file);
  t.teardown(() => s2.stop());
  const closed = await s2.closeOpenPlays(120_000, 'd', () => 10);
  t.equal(closed.length, 1);
  t.equal(closed[0]?.outcome, 'interrupted');
  t.equal(closed[0]?.seq, 2, 'seq continues after restart');
  t.equal(closed[0]?.durationMs, 20_000);
  t.same([...(await s2.countCompleted('2024-08-15'))], [['c1', 1]], 'neither reset nor double-counted');
  t.equal(await s2.nextSession(), 2, 'session survives restarts');
  t.equal((await s2.closeOpenPlays(130_000, 'd', () => 10)).length, 0, 'closing is idempotent');
  await s1.stop().catch(() => undefined);
});

t.test('desired state: versions per topic, cleared override keeps its version', async (t) => {
  const file = tempFile(t);
  const s = await open(file);
  t.equal(await s.appliedVersion('assignment', 'device'), 0);
  await s.applyIfNewer('device', { kind: 'assignment', doc: { version: 7, campaigns: [] } }, 1);
  await s.applyIfNewer('group/all', { kind: 'assignment', doc: { version: 3, campaigns: [] } }, 2);
  await s.applyIfNewer('device', { kind: 'override', doc: { version: 4, campaigns: { c1: { timesPerDay: 20 } } } }, 3);
  await s.applyIfNewer('device', { kind: 'override', clear: true }, 4);
  await s.stop();
  const s2 = await open(file);
  t.teardown(() => s2.stop());
  t.equal(await s2.appliedVersion('assignment', 'device'), 7);
  t.equal(await s2.appliedVersion('override', 'device'), 4);
  const d = await s2.loadDesired();
  t.same(d.assignments.map((a) => [a.source, a.version]), [['device', 7], ['group/all', 3]]);
  t.equal(d.overrides[0]?.doc, null);
});

t.test('applyIfNewer: writes only above the stored version, answers with what was there and the state after', async (t) => {
  const s = await open(tempFile(t));
  t.teardown(() => s.stop());
  const a7 = { version: 7, campaigns: [] };
  const r1 = await s.applyIfNewer('device', { kind: 'assignment', doc: a7 }, 10);
  t.equal(r1.outcome, 'applied');
  t.equal(r1.previous, undefined);
  t.same(r1.state, { assignments: [{ source: 'device', version: 7, doc: a7, appliedAt: 10 }], overrides: [] });
  const r2 = await s.applyIfNewer('device', { kind: 'assignment', doc: { version: 7, campaigns: [], loop: [] } }, 11);
  t.equal(r2.outcome, 'unchanged', 'the same version is not newer, whatever it holds');
  t.same(r2.previous, { source: 'device', version: 7, doc: a7, appliedAt: 10 });
  t.equal((await s.applyIfNewer('device', { kind: 'assignment', doc: { version: 6, campaigns: [] } }, 12)).outcome, 'unchanged');
  t.equal((await s.applyIfNewer('device', { kind: 'override', clear: true }, 13)).outcome, 'unchanged', 'no override to clear');
  const o = { version: 2, campaigns: { c1: { timesPerDay: 1 } } };
  t.equal((await s.applyIfNewer('device', { kind: 'override', doc: o }, 14)).outcome, 'applied', 'kinds are separate topics');
  const c = await s.applyIfNewer('device', { kind: 'override', clear: true }, 15);
  t.equal(c.outcome, 'cleared');
  t.same(c.previous, { source: 'device', version: 2, doc: o, appliedAt: 14 });
  t.same(c.state.overrides, [{ source: 'device', version: 2, doc: null, appliedAt: 15 }], 'the version stays');
  t.equal((await s.applyIfNewer('device', { kind: 'override', clear: true }, 16)).outcome, 'unchanged', 'cleared already');
  t.same(await s.loadDesired(), c.state, 'the state it answered is the state stored');
});

t.test('applyIfNewer is one transaction: concurrent applies on one topic cannot both win', async (t) => {
  const s = await open(tempFile(t));
  t.teardown(() => s.stop());
  const doc = (version: number, id: string): { version: number; campaigns: [] ; loop: Array<{ url: string; sha256: string }> } => ({ version, campaigns: [], loop: [{ url: `file:///${id}.mp4`, sha256: 'b'.repeat(64) }] });
  // Two publishers reuse version 5: exactly one document is stored, and it is the one that says so.
  const same = await Promise.all([
    s.applyIfNewer('device', { kind: 'assignment', doc: doc(5, 'a') }, 1),
    s.applyIfNewer('device', { kind: 'assignment', doc: doc(5, 'b') }, 1),
  ]);
  t.same(same.map((r) => r.outcome).sort(), ['applied', 'unchanged']);
  const winner = same.find((r) => r.outcome === 'applied')!;
  t.same((await s.loadDesired()).assignments[0]!.doc, winner.state.assignments[0]!.doc);
  t.same(same.find((r) => r.outcome === 'unchanged')!.previous?.doc, winner.state.assignments[0]!.doc, 'the loser saw the winner');
  // Many versions at once, in any order: the highest ends up stored and no lower one after it.
  const versions = [9, 6, 12, 7, 11, 8, 10];
  const rs = await Promise.all(versions.map((v) => s.applyIfNewer('group/all', { kind: 'assignment', doc: doc(v, `v${v}`) }, v)));
  t.equal(await s.appliedVersion('assignment', 'group/all'), 12);
  const wrote = rs.filter((r) => r.outcome === 'applied').map((r) => r.state.assignments.find((a) => a.source === 'group/all')!.version);
  t.same(wrote, [...wrote].sort((x, y) => x - y), 'each write was above the one before it');
  t.equal(wrote.at(-1), 12);
});

t.test('outbox: oldest first, delete by id, trim drops the oldest, events share it', async (t) => {
  const s = await open(tempFile(t));
  t.teardown(() => s.stop());
  await s.recordEvent({ ts: new Date(5).toISOString(), type: 'applied', detail: { v: 1 } });
  await s.outboxInsertMany('event', Array.from({ length: 10 }, (_, i) => JSON.stringify({ i })), 6);
  t.equal(await s.outboxCount(), 11);
  const first = await s.outboxPeek(3);
  t.equal(JSON.parse(first[0]!.payload).type, 'applied');
  await s.outboxDelete(first.map((r) => r.id));
  t.equal(await s.outboxCount(), 8);
  const after = await s.outboxPeek(2, first[2]!.id);
  t.same(after.map((r) => JSON.parse(r.payload).i), [2, 3]);
  t.equal(await s.outboxTrim(5), 3);
  t.same((await s.outboxPeek(100)).map((r) => JSON.parse(r.payload).i), [5, 6, 7, 8, 9]);
  t.equal(await s.outboxTrim(5), 0);
});

t.test('commands are claimed once; meta round-trips', async (t) => {
  const s = await open(tempFile(t));
  t.teardown(() => s.stop());
  t.equal(await s.claimCommand('c-1', 1000), true);
  t.equal(await s.claimCommand('c-1', 2000), false);
  t.equal(await s.getMeta('k'), undefined);
  await s.setMeta('k', 'v1');
  await s.setMeta('k', 'v2');
  t.equal(await s.getMeta('k'), 'v2');
});

t.test('concurrent callers never interleave transactions', async (t) => {
  const s = await open(tempFile(t));
  t.teardown(() => s.stop());
  const ids = await Promise.all(Array.from({ length: 50 }, (_, i) => s.recordPlayStart(start({ startedAt: i }))));
  const evs = await Promise.all(ids.map((id) => s.recordPlayEnd(id, { endedAt: 99, durationMs: 1, outcome: 'completed', target: 50 }, 'd')));
  t.same(evs.map((e) => e.seq).sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i + 1));
  t.equal(Math.max(...evs.map((e) => e.played)), 50);
});

t.test('an interrupted play is closed at its expected end, not at a restart hours later (PROTOCOL v1.1 §8)', async (t) => {
  const file = tempFile(t);
  const s1 = await open(file);
  const startedAt = Date.parse('2024-08-15T01:00:00Z');
  await s1.recordPlayStart(start({ startedAt, expectedMs: 30_000 }));
  await s1.recordPlayStart(start({ startedAt: startedAt + 3 * 3600_000, expectedMs: 30_000 }));
  // power cut: reopen the file without stop(); the restart is 5 h after the first start
  const s2 = await open(file);
  t.teardown(() => s2.stop());
  const restart = startedAt + 3 * 3600_000 + 10_000;
  const closed = await s2.closeOpenPlays(restart, 'd', () => 10);
  t.equal(closed[0]?.endedAt, new Date(startedAt + 30_000).toISOString(), 'endedAt = startedAt + expected length');
  t.equal(closed[0]?.durationMs, 30_000);
  t.equal(closed[1]?.endedAt, new Date(restart).toISOString(), 'a restart before the expected end stays the end');
  t.equal(closed[1]?.durationMs, 10_000);
  await s1.stop().catch(() => undefined);
});
