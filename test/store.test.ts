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
  t.equal(out[0], String(migrations.at(-1)?.version), 'the latest migration');
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
  t.equal(ev1.eventId, 'dev-1:1');
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
  await s.applyDesired('assignment', 'device', 7, { version: 7, campaigns: [] }, 1);
  await s.applyDesired('assignment', 'group/all', 3, { version: 3, campaigns: [] }, 2);
  await s.applyDesired('override', 'device', 4, { version: 4, campaigns: { c1: { timesPerDay: 20 } } }, 3);
  await s.applyDesired('override', 'device', 4, null, 4);
  await s.stop();
  const s2 = await open(file);
  t.teardown(() => s2.stop());
  t.equal(await s2.appliedVersion('assignment', 'device'), 7);
  t.equal(await s2.appliedVersion('override', 'device'), 4);
  const d = await s2.loadDesired();
  t.same(d.assignments.map((a) => [a.source, a.version]), [['device', 7], ['group/all', 3]]);
  t.equal(d.overrides[0]?.doc, null);
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
