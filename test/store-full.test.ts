import t from 'tap';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { flushJobs, VirtualClock } from '../agent/core/clock.js';
import { silentLogger } from '../agent/core/log.js';
import type { Campaign } from '../agent/core/types.js';
import { Engine } from '../agent/engine/engine.js';
import { EventRecorder } from '../agent/events/recorder.js';
import { SimulatedPlayer } from '../agent/player/simulated.js';
import { effectiveState } from '../agent/schedule/desired.js';
import { Zone } from '../agent/schedule/zoned.js';
import { SqliteStore } from '../agent/store/sqlite-store.js';
import type { PlayStart } from '../agent/store/store.js';

import { tempDir } from './helpers/tmp.js';
import { waitFor } from './helpers/wait.js';

// A card that fills up while playing (issue 14 item 2), on a real filesystem: a 4 MB tmpfs
// holding the store, filled with a filler file until ENOSPC, so SQLite itself gets SQLITE_FULL.
// Needs root (mount); skipped, and says so, where mount is refused.

function mountTmpfs(dir: string, size: string): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Writes `file` until the filesystem refuses another byte. */
function fill(file: string): void {
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (let size = chunk.length; size >= 1; size = Math.floor(size / 2)) {
      try {
        for (;;) writeSync(fd, chunk, 0, size);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
      }
    }
  } finally {
    closeSync(fd);
  }
}

const start = (i: number): PlayStart => ({
  campaignId: 'c1', mediaSha256: 'a'.repeat(64), day: '2024-08-15', scheduledAt: 1000 + i * 60_000, startedAt: 1000 + i * 60_000,
  inWindow: true, display: 'unknown', clockSynced: true, expectedMs: 30_000,
});

t.test('disk full while playing: plays count at once, are written in order when space returns, seq gapless', async (t) => {
  const dir = path.join(tempDir(t, 'store-full-'), 'mnt');
  mkdirSync(dir);
  if (!mountTmpfs(dir, '4m')) {
    t.plan(0, 'cannot mount a tmpfs here (not root?): the disk-full path is not exercised');
    return;
  }
  t.teardown(() => execFileSync('umount', ['-l', dir]));
  const s = new SqliteStore({ file: path.join(dir, 'agent.db'), log: silentLogger(), minFreeMB: 1 });
  await s.start();
  t.teardown(() => s.stop());
  const play = async (i: number): Promise<void> => {
    const id = await s.recordPlayStart(start(i));
    await s.recordPlayEnd(id, { endedAt: start(i).startedAt + 30_000, durationMs: 30_000, outcome: 'completed', target: 20 }, 'd');
  };
  await play(0);
  await play(1);
  t.equal(s.health().state, 'ok');

  await s.checkpoint(); // an empty WAL: the next write must grow it
  const filler = path.join(dir, 'filler');
  fill(filler);
  for (let i = 2; i < 7; i++) {
    await play(i);
    t.equal((await s.countCompleted('2024-08-15')).get('c1'), i + 1, `play ${i + 1} counts at once although the store cannot write`);
  }
  await s.recordEvent({ ts: new Date(0).toISOString(), type: 'probe', detail: {} });
  const h = s.health();
  t.equal(h.state, 'full', 'health says the store cannot write');
  t.match(h.lastError ?? '', /SQLITE_FULL/);
  t.ok(h.pending >= 5, `writes wait in memory (${h.pending})`);
  t.equal((await s.playsForDay('2024-08-15')).length, 7, 'playsForDay shows them too');

  rmSync(filler);
  // No new write: the retry timer alone writes them.
  await waitFor('pending writes written', () => s.health().pending === 0, 20_000);
  await waitFor('state ok once free space is read again', () => s.health().state === 'ok', 5_000);
  const rows = await s.playsForDay('2024-08-15');
  t.same(rows.map((r) => r.seq), [1, 2, 3, 4, 5, 6, 7], 'every play written, seq gapless, in order');
  t.ok(rows.every((r) => r.id > 0 && r.outcome === 'completed'), 'as real rows');
  t.equal((await s.countCompleted('2024-08-15')).get('c1'), 7, 'counted once, not twice');
  const box = (await s.outboxPeek(100)).map((r) => JSON.parse(r.payload) as { seq?: number; type?: string; eventId?: string });
  const playSeqs = box.filter((b) => b.seq !== undefined).map((b) => b.seq);
  t.same(playSeqs, [1, 2, 3, 4, 5, 6, 7], 'every play event queued, in order');
  t.equal(new Set(box.filter((b) => b.eventId).map((b) => b.eventId)).size, 7, 'eventIds unique');
  t.ok(box.some((b) => b.type === 'probe'), 'the event recorded meanwhile is queued');
  t.ok(box.some((b) => b.type === 'store-recovered'), 'store-recovered says the store can write again');
  await play(7);
  t.equal((await s.playsForDay('2024-08-15')).at(-1)?.seq, 8, 'the next play is written directly');
});

t.test('free space under the floor: degraded and a disk-low event, before SQLite hits the wall', async (t) => {
  const dir = path.join(tempDir(t, 'store-low-'), 'mnt');
  mkdirSync(dir);
  if (!mountTmpfs(dir, '4m')) {
    t.plan(0, 'cannot mount a tmpfs here (not root?)');
    return;
  }
  t.teardown(() => execFileSync('umount', ['-l', dir]));
  const s = new SqliteStore({ file: path.join(dir, 'agent.db'), log: silentLogger(), minFreeMB: 100 });
  await s.start();
  t.teardown(() => s.stop());
  const h = s.health();
  t.equal(h.state, 'degraded', 'a 4 MB filesystem is under a 100 MB floor');
  t.equal(h.pending, 0, 'yet everything is written');
  const events = (await s.outboxPeek(10)).map((r) => JSON.parse(r.payload) as { type: string; detail: { minFreeMB: number } });
  t.equal(events.filter((e) => e.type === 'disk-low').length, 1, 'one disk-low event');
  t.equal(events[0]?.detail.minFreeMB, 100);
});

t.test('engine on a full disk: no more spots than were due, none lost once space returns', async (t) => {
  // Before: every record failed, the count never rose and the engine replayed the spot at once.
  const dir = path.join(tempDir(t, 'store-full-engine-'), 'mnt');
  mkdirSync(dir);
  if (!mountTmpfs(dir, '4m')) {
    t.plan(0, 'cannot mount a tmpfs here (not root?)');
    return;
  }
  t.teardown(() => execFileSync('umount', ['-l', dir]));
  const TZ = 'Asia/Ho_Chi_Minh';
  const zone = new Zone(TZ);
  const at = zone.localToEpoch('2024-08-15', 6 * 3600);
  const clock = new VirtualClock(at);
  const store = new SqliteStore({ file: path.join(dir, 'agent.db'), log: silentLogger(), clock, minFreeMB: 1 });
  await store.start();
  const c: Campaign = { id: 'c1', media: { url: 'file:///spot.mp4', sha256: 'ab'.repeat(32), durationMs: 30_000 }, timesPerDay: 5, windows: ['06:30-06:40'] };
  const desired = effectiveState({ assignments: [{ source: 'device', version: 1, doc: { version: 1, campaigns: [c] }, appliedAt: at }], overrides: [] }, []);
  const player = new SimulatedPlayer({ clock });
  const engine = new Engine({
    clock, store, player, log: silentLogger(), deviceId: 'dev', timezone: TZ,
    desired: () => desired,
    resolve: (m) => ({ path: m.url, sha256: m.sha256, durationMs: 30_000 }),
    events: new EventRecorder({ store, clock, log: silentLogger() }),
  });
  const settle = async (): Promise<void> => {
    await flushJobs();
    await engine.whenIdle();
  };
  await player.start();
  await engine.start();
  t.teardown(async () => {
    await engine.stop();
    await store.stop().catch(() => undefined);
  });
  await store.checkpoint();
  const filler = path.join(dir, 'filler');
  fill(filler);
  await clock.advanceTo(zone.localToEpoch('2024-08-15', 6 * 3600 + 45 * 60), settle);
  t.equal(player.history.length, 5, `5 spots on screen while the store could not write (${player.history.length})`);
  t.equal(store.health().state, 'full');
  t.equal((await store.countCompleted('2024-08-15')).get('c1'), 5, 'all five counted');
  t.equal((await engine.compliance())[0]?.played, 5, 'compliance counts them');

  rmSync(filler);
  await clock.advanceTo(clock.now() + 10_000, settle);
  await waitFor('written', () => store.health().pending === 0, 10_000);
  const rows = await store.playsForDay('2024-08-15');
  t.same(rows.map((r) => r.seq), [1, 2, 3, 4, 5], 'none lost, seq gapless');
  t.ok(rows.every((r) => r.outcome === 'completed' && r.id > 0));
  await clock.advanceTo(zone.localToEpoch('2024-08-15', 7 * 3600), settle);
  t.equal(player.history.length, 5, 'and none replayed after');
});
