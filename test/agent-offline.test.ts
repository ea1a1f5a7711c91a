import t from 'tap';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { scene } from './helpers/e2e.js';
import { waitFor } from './helpers/wait.js';


t.test('broker down mid-window, agent restarted offline: plays go on from the stored plan and every event arrives once, in order', async (t) => {
  const s = await scene(t, { assignTo: 'device/off-1', timesPerDay: 180, windowSec: 900 });
  const a1 = s.agent('off-1');
  a1.start();
  const plays = () => s.plays('off-1');
  await waitFor('two plays online', () => plays().length >= 2, 30_000);
  // Delivered is not yet acked: the NOC can hold a play whose PUBACK the broker's death cuts off,
  // and at-least-once then sends it again. Kill the broker once the agent has deleted what it
  // sent, so every event is expected exactly once.
  const db = path.join(s.dir, 'off-1-data', 'agent.db');
  const unsentPlays = (): number => Number(execFileSync('sqlite3', [db, "SELECT COUNT(*) FROM outbox WHERE kind = 'play'"]).toString().trim());
  await waitFor('the online plays acked and deleted', () => unsentPlays() === 0, 30_000);

  await s.broker.kill();
  const ended1 = a1.logged('spot ended').length;
  await waitFor('two plays while the broker is down', () => a1.logged('spot ended').length >= ended1 + 2, 20_000);
  t.equal(await a1.stop(), 0, 'stops cleanly without a broker');

  // A reboot with the broker still down: the last applied plan plays from the store.
  const a2 = s.agent('off-1');
  a2.start();
  await waitFor('two plays after the offline restart', () => a2.logged('spot ended').length >= 2, 30_000);
  const total = a1.logged('spot ended').length + a2.logged('spot ended').length;

  await s.broker.restart();
  await waitFor(`all ${total}+ play events delivered`, () => plays().length >= total, 60_000);
  const all = plays();
  t.same(all.map((p) => p.seq), all.map((_, i) => i + 1), 'seq gapless, oldest first');
  t.equal(new Set(all.map((p) => p.eventId)).size, all.length, 'never two events for one play');
  t.ok(all.every((p) => p.outcome === 'completed'), 'nothing interrupted by the outage');
  t.ok(all.slice(1).every((p, i) => p.startedAt > all[i]!.startedAt), 'in play order');
  t.equal(await a2.stop(), 0);
});
