import t from 'tap';
import path from 'node:path';
import { SqliteStore } from '../agent/store/sqlite-store.js';
import { silentLogger } from '../agent/core/log.js';
import { tempDir } from './helpers/tmp.js';

// Issue 14: under a flood, event rows (each its own fsync'd transaction) queued ahead of the play
// records, and one play's end was recorded 29 s late. The play path has its own lane to the store.

const start = {
  campaignId: 'c1',
  mediaSha256: 'a'.repeat(64),
  day: '2024-08-15',
  scheduledAt: 1000,
  startedAt: 1010,
  inWindow: true,
  display: 'unknown' as const,
  clockSynced: true,
};

t.test('a play record overtakes event writes already waiting for the connection', async (t) => {
  const s = new SqliteStore({ file: path.join(tempDir(t, 'store-lanes-'), 'agent.db'), log: silentLogger() });
  await s.start();
  t.teardown(() => s.stop());
  const done: string[] = [];
  const events = Array.from({ length: 200 }, (_, i) =>
    s.recordEvent({ ts: new Date(1000 + i).toISOString(), type: 'rejected', detail: { i } }).then(() => done.push(`event ${i}`)),
  );
  const play = s.recordPlayStart(start).then(async (id) => {
    done.push('play start');
    await s.recordPlayEnd(id, { endedAt: 2010, durationMs: 1000, outcome: 'completed', target: 1 }, 'dev-1');
    done.push('play end');
  });
  await Promise.all([...events, play]);
  t.equal(done.length, 202);
  // At most the write that held the connection when the play arrived (and the one after it,
  // while the end is being prepared) runs first; before the lanes it waited for all 200.
  t.ok(done.indexOf('play start') <= 1, `play start finished ${done.indexOf('play start')}th`);
  t.ok(done.indexOf('play end') <= 3, `play end finished ${done.indexOf('play end')}th`);
  // Order within a lane is kept.
  const evOrder = done.filter((d) => d.startsWith('event')).map((d) => Number(d.slice(6)));
  t.same(evOrder, [...evOrder].sort((a, b) => a - b), 'events written in the order recorded');
  t.equal((await s.countCompleted('2024-08-15')).get('c1'), 1);
});
