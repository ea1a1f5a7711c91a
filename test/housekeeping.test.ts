import t from 'tap';
import path from 'node:path';
import { VirtualClock } from '../agent/core/clock.js';
import { silentLogger } from '../agent/core/log.js';
import { Housekeeping } from '../agent/housekeeping/housekeeping.js';
import { Zone } from '../agent/schedule/zoned.js';
import { SqliteStore } from '../agent/store/sqlite-store.js';
import { tempDir } from './helpers/tmp.js';

const TZ = 'Asia/Ho_Chi_Minh';

t.test('nightly housekeeping prunes closed plays older than keepDays, never open ones or the outbox', async (t) => {
  const store = new SqliteStore({ file: path.join(tempDir(t), 'agent.db'), log: silentLogger() });
  await store.start();
  t.teardown(() => store.stop());
  const play = async (day: string, close: boolean): Promise<void> => {
    const id = await store.recordPlayStart({ campaignId: 'c', mediaSha256: 'ab'.repeat(32), day, scheduledAt: 1, startedAt: 1, inWindow: true, display: 'unknown', clockSynced: true });
    if (close) await store.recordPlayEnd(id, { endedAt: 2, durationMs: 1, outcome: 'completed', target: 1 }, 'd');
  };
  await play('2024-01-01', true);
  await play('2024-01-09', true);
  await play('2024-01-10', true);
  await play('2024-01-02', false); // left open by a crash: closed at the next start, never pruned first
  const clock = new VirtualClock(new Zone(TZ).localToEpoch('2024-01-17', 3 * 3600));
  const hk = new Housekeeping({ store, clock, log: silentLogger(), timezone: TZ, keepDays: 7 });
  t.same(await hk.run(), { pruned: 2 }, 'plays of days before 2024-01-10 pruned');
  t.equal((await store.playsForDay('2024-01-10')).length, 1, 'keepDays kept');
  t.equal((await store.playsForDay('2024-01-02')).length, 1, 'the open play stays');
  t.equal(await store.outboxCount(), 3, 'their events stay in the outbox until acknowledged');
  t.same(await hk.run(), { pruned: 0 }, 'idempotent');
});

t.test('the job runs at 03:17 in the screen\'s timezone', async (t) => {
  const store = new SqliteStore({ file: ':memory:', log: silentLogger() });
  await store.start();
  t.teardown(() => store.stop());
  const hk = new Housekeeping({ store, clock: new VirtualClock(0), log: silentLogger(), timezone: TZ, keepDays: 400 });
  await hk.start();
  const next = hk.nextRun();
  t.ok(next, 'scheduled');
  t.equal(new Zone(TZ).formatTime(next!.getTime()), '03:17:00');
  t.ok(next!.getTime() > Date.now() && next!.getTime() <= Date.now() + 86_400_000, 'within the next day');
  await hk.stop();
  t.equal(hk.nextRun(), undefined, 'cancelled on stop');
});
