import t from 'tap';
import path from 'node:path';
import type { Campaign } from '../agent/core/types.js';
import { Zone } from '../agent/schedule/zoned.js';
import type { LedgerEntry } from '../agent/store/store.js';
import { engineRig, type EngineRig } from './helpers/engine-rig.js';
import { tempDir } from './helpers/tmp.js';

// PROTOCOL v1.1 §7: a past day's report answers from what was in force that day.

const TZ = 'Asia/Ho_Chi_Minh';
const zone = new Zone(TZ);
const D = '2024-08-15';
const NEXT = '2024-08-16';
const directive: Campaign = {
  id: 'ihanoi-2024',
  media: { url: 'file:///spot.mp4', sha256: 'ab'.repeat(32), durationMs: 30_000 },
  timesPerDay: 10,
  windows: ['06:30-08:30', '16:30-19:00'],
};

/** Counts the ledger writes the engine makes (each call is one transaction). */
function countLedgerWrites(r: EngineRig): LedgerEntry[][] {
  const calls: LedgerEntry[][] = [];
  const orig = r.store.recordLedger.bind(r.store);
  r.store.recordLedger = async (entries, at) => {
    calls.push(entries);
    await orig(entries, at);
  };
  return calls;
}

t.test('a past day reports the target in force that day, after the override is cleared and after a restart', async (t) => {
  const file = path.join(tempDir(t), 'agent.db');
  let plans = 0;
  const r = await engineRig(t, file, zone.dayBounds(D).start, [directive], { engine: { onPlanned: () => plans++ } });
  const writes = countLedgerWrites(r);
  await r.setOverride({ version: 1, campaigns: { 'ihanoi-2024': { timesPerDay: 20 } } });
  await r.clock.advanceTo(zone.dayBounds(D).end - 1, r.settle);
  t.same(await r.engine.compliance(D), [{ campaignId: 'ihanoi-2024', day: D, played: 20, target: 20, onTrack: true }], 'D: 20 of 20 as raised');

  await r.clock.advanceTo(zone.dayBounds(NEXT).start + 30_000, r.settle);
  await r.setOverride(null); // the operator clears the override the next morning
  await r.clock.advanceTo(zone.dayBounds(NEXT).start + 3600_000, r.settle);
  t.same(await r.engine.compliance(D), [{ campaignId: 'ihanoi-2024', day: D, played: 20, target: 20, onTrack: true }], 'D still 20 of 20 after the clear');
  t.equal((await r.engine.compliance(NEXT))[0]?.target, 10, 'today is back to the assignment');
  const pastPlan = await r.engine.planFor(D);
  t.equal(pastPlan.campaigns[0]?.overridden, true, 'planFor a past day: as the ledger says');
  t.equal(pastPlan.campaigns[0]?.windows.length, 2);

  const forD = writes.filter((w) => w.some((e) => e.day === D));
  t.equal(forD.length, 1, 'D written once for the override (the first plan of D was written before the spy)');
  t.ok(plans > 40, `${plans} plans, yet ${writes.length} ledger writes in all`);
  t.ok(writes.length <= 3, 'a write per plan change, not per wake');

  // A restart from the same store rewrites nothing and still answers D from the ledger.
  await r.crash();
  const b = await engineRig(t, file, r.clock.now(), [directive], { clock: r.clock });
  const again = countLedgerWrites(b);
  await b.clock.advanceTo(b.clock.now() + 3600_000, b.settle);
  t.equal(again.length, 0, 'nothing rewritten after a restart');
  t.same(await b.engine.compliance(D), [{ campaignId: 'ihanoi-2024', day: D, played: 20, target: 20, onTrack: true }], 'D after the restart');
});

t.test('a day the ledger does not know is rebuilt from what is in force (stores from before the ledger)', async (t) => {
  const r = await engineRig(t, path.join(tempDir(t), 'agent.db'), zone.dayBounds(NEXT).start + 60_000, [directive]);
  t.same(await r.store.ledgerOf(D), []);
  t.same(await r.engine.compliance(D), [{ campaignId: 'ihanoi-2024', day: D, played: 0, target: 10, onTrack: false }]);
});
