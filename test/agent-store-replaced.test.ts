import t from 'tap';
import { closeSync, existsSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import { scene } from './helpers/e2e.js';
import { waitFor } from './helpers/wait.js';


// The store damaged while the agent was stopped (issue 14 item 3): before, every start exited 1
// with SQLITE_NOTADB before mpv or MQTT started (under Restart=always a black screen forever).
// Now the agent moves it aside, plays on with a fresh store and says so.

t.test('a store with a zeroed header: the agent starts, plays, reports store-replaced, never reuses an eventId', async (t) => {
  const s = await scene(t, { assignTo: 'device/rep-1', timesPerDay: 120, windowSec: 600 });
  const plays = () => s.plays('rep-1');
  const statuses = () => s.messages<{ online: boolean; storeId?: string }>('rep-1', 'status');
  const a1 = s.agent('rep-1');
  a1.start();
  await waitFor('two completed plays', () => plays().filter((p) => p.outcome === 'completed').length >= 2, 40_000);
  t.equal(await a1.stop(), 0);
  const before = plays().length;
  const oldStoreId = plays()[0]!.storeId;
  t.equal(statuses().find((x) => x.online)?.storeId, oldStoreId, 'status names the store of the play events');

  const file = path.join(a1.dir, 'rep-1-data', 'agent.db');
  const fd = openSync(file, 'r+');
  writeSync(fd, Buffer.alloc(100), 0, 100, 0);
  closeSync(fd);

  const a2 = s.agent('rep-1');
  a2.start();
  await waitFor('a completed play from the fresh store', () => plays().slice(before).some((p) => p.outcome === 'completed'), 40_000);
  const fresh = plays().slice(before);
  const newStoreId = fresh[0]!.storeId;
  t.not(newStoreId, oldStoreId, 'a new storeId');
  t.ok(fresh.every((p) => p.storeId === newStoreId && p.eventId === `rep-1:${newStoreId}:${p.seq}`), 'play events carry the new storeId');
  t.equal(new Set(plays().map((p) => p.eventId)).size, plays().length, 'no eventId reused across the two stores');
  await waitFor('a birth with the new storeId', () => statuses().some((x) => x.online && x.storeId === newStoreId), 10_000);
  const events = s.messages<{ type: string; detail: Record<string, unknown> }>('rep-1', 'event').filter((e) => e.type === 'store-replaced');
  t.equal(events.length, 1, 'one store-replaced event');
  const d = events[0]?.detail ?? {};
  t.equal(d.reason, 'not-a-database');
  t.equal(d.previousStoreId, oldStoreId);
  t.equal(d.storeId, newStoreId);
  t.equal(d.countsReset, true, "says the day's counts start at zero");
  t.ok(typeof d.movedTo === 'string' && existsSync(d.movedTo), `the old file is kept at ${String(d.movedTo)}`);
  t.equal(await a2.stop(), 0);
});
