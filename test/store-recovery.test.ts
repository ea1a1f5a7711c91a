import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, openSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { silentLogger } from '../agent/core/log.js';
import { SqliteStore } from '../agent/store/sqlite-store.js';
import type { PlayStart } from '../agent/store/store.js';
import { tempDir } from './helpers/tmp.js';

// A store damaged or lost while the agent was stopped (issue 14 item 3): the daemon's open
// (recover: true, as run-cmd builds it) moves the file aside and starts a fresh store with a
// new storeId, so the screen keeps playing and no eventId is ever reused.

const start = (startedAt: number): PlayStart => ({
  campaignId: 'c1', mediaSha256: 'a'.repeat(64), day: '2024-08-15', scheduledAt: startedAt, startedAt,
  inWindow: true, display: 'unknown', clockSynced: true, expectedMs: 30_000,
});

async function open(file: string, recover = true): Promise<SqliteStore> {
  const s = new SqliteStore({ file, log: silentLogger(), recover });
  await s.start();
  return s;
}

/** A store with `n` completed plays and enough rows to span many pages; returns its storeId and eventIds. */
async function populated(file: string, n: number): Promise<{ storeId: string; eventIds: string[] }> {
  const s = await open(file);
  const eventIds: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = await s.recordPlayStart(start(1000 + i * 60_000));
    eventIds.push((await s.recordPlayEnd(id, { endedAt: 31_000 + i * 60_000, durationMs: 30_000, outcome: 'completed', target: 10 }, 'd')).eventId);
  }
  await s.outboxInsertMany('event', Array.from({ length: 2000 }, (_, i) => JSON.stringify({ i, pad: 'x'.repeat(200) })), 1);
  const storeId = s.storeId();
  await s.stop();
  return { storeId, eventIds };
}

const damages: Array<{ name: string; reason: string; damage: (file: string) => void }> = [
  { name: 'truncated', reason: 'corrupt', damage: (f) => truncateSync(f, Math.floor(statSync(f).size / 4096 / 2) * 4096) },
  { name: 'garbage', reason: 'not-a-database', damage: (f) => writeFileSync(f, randomBytes(statSync(f).size)) },
  {
    name: 'zeroed header',
    reason: 'not-a-database',
    damage: (f) => {
      const fd = openSync(f, 'r+');
      writeSync(fd, Buffer.alloc(100), 0, 100, 0);
      closeSync(fd);
    },
  },
];

for (const d of damages) {
  t.test(`a ${d.name} store is moved aside and replaced; eventIds are not reused`, async (t) => {
    const dir = tempDir(t, 'store-rec-');
    const file = path.join(dir, 'agent.db');
    const old = await populated(file, 3);
    d.damage(file);
    const damaged = readFileSync(file);
    await t.rejects(open(file, false), 'without recovery (tools) the damaged store is refused');
    t.ok(existsSync(file), 'and left where it is');
    // A WAL and shared-memory file left beside it go with it.
    writeFileSync(`${file}-wal`, 'wal');
    writeFileSync(`${file}-shm`, 'shm');

    const s = await open(file);
    t.teardown(() => s.stop());
    const r = s.replacement();
    t.equal(r?.reason, d.reason);
    t.equal(r?.previousStoreId, old.storeId, 'the marker named the old store');
    t.match(r?.movedTo ?? '', /agent\.db\.broken-\d{8}T\d{6}Z$/);
    t.ok(readFileSync(r!.movedTo!).equals(damaged), 'the old file is kept aside, untouched');
    t.equal(readFileSync(`${r!.movedTo!}-wal`, 'utf8'), 'wal', 'its -wal moved with it');
    // The -shm is SQLite's index of the WAL, rewritten in place by any open: only its place matters.
    t.ok(existsSync(`${r!.movedTo!}-shm`), 'its -shm moved with it');
    t.notOk(existsSync(`${file}-wal.kept`) || existsSync(`${file}-shm.kept`), 'no kept links left behind');
    t.not(s.storeId(), old.storeId, 'a new storeId');
    t.match(s.storeId(), /^[0-9a-f]{16}$/);
    t.same([...(await s.countCompleted('2024-08-15'))], [], 'the fresh store starts the day at zero');
    const id = await s.recordPlayStart(start(500_000));
    const ev = await s.recordPlayEnd(id, { endedAt: 530_000, durationMs: 30_000, outcome: 'completed', target: 10 }, 'd');
    t.equal(ev.seq, 1, 'seq starts at 1 in the new store');
    t.notOk(old.eventIds.includes(ev.eventId), `eventId ${ev.eventId} is not one of the old store's`);
    t.equal(readFileSync(path.join(dir, 'store-id'), 'utf8').trim(), s.storeId(), 'the marker names the new store');
  });
}

t.test('a store with a newer schema is moved aside by the daemon (tools refuse it)', async (t) => {
  const dir = tempDir(t, 'store-rec-');
  const file = path.join(dir, 'agent.db');
  await populated(file, 1);
  execFileSync('sqlite3', [file, 'PRAGMA user_version = 99;']);
  await t.rejects(open(file, false), /newer than this agent/);
  const s = await open(file);
  t.teardown(() => s.stop());
  t.equal(s.replacement()?.reason, 'newer-schema');
  t.equal(execFileSync('sqlite3', [s.replacement()!.movedTo!, 'PRAGMA user_version;']).toString().trim(), '99', 'moved aside untouched');
});

t.test('a deleted store is noticed by its marker: store-replaced (missing), a new storeId', async (t) => {
  const dir = tempDir(t, 'store-rec-');
  const file = path.join(dir, 'agent.db');
  const old = await populated(file, 2);
  for (const f of readdirSync(dir)) if (f.startsWith('agent.db')) rmSync(path.join(dir, f));
  const s = await open(file);
  t.teardown(() => s.stop());
  t.same(s.replacement(), { reason: 'missing', previousStoreId: old.storeId });
  t.not(s.storeId(), old.storeId);
  const id = await s.recordPlayStart(start(500_000));
  const ev = await s.recordPlayEnd(id, { endedAt: 530_000, durationMs: 30_000, outcome: 'completed', target: 10 }, 'd');
  t.notOk(old.eventIds.includes(ev.eventId), 'eventIds never repeat');
});

t.test('a deleted store and marker are noticed by the media index (evidence)', async (t) => {
  const dir = tempDir(t, 'store-rec-');
  const file = path.join(dir, 'agent.db');
  const index = path.join(dir, 'index.json');
  writeFileSync(index, '{}');
  const s = new SqliteStore({ file, log: silentLogger(), recover: true, evidence: [index] });
  await s.start();
  t.teardown(() => s.stop());
  t.same(s.replacement(), { reason: 'missing' });
});

t.test('a first start in an empty dataDir, and a clean restart, replace nothing', async (t) => {
  const dir = tempDir(t, 'store-rec-');
  const file = path.join(dir, 'agent.db');
  const s1 = await open(file);
  t.equal(s1.replacement(), undefined);
  const id = s1.storeId();
  await s1.stop();
  const s2 = await open(file);
  t.teardown(() => s2.stop());
  t.equal(s2.replacement(), undefined);
  t.equal(s2.storeId(), id, 'the storeId survives restarts');
});
