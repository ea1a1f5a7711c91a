import t from 'tap';
import path from 'node:path';
import type { Campaign } from '../agent/core/types.js';
import { Zone } from '../agent/schedule/zoned.js';
import { engineRig, type EngineRig } from './helpers/engine-rig.js';
import { tempDir } from './helpers/tmp.js';

// Wall-clock steps mid-spot (NTP on a Pi without RTC): durations come from monotonic time,
// the step is noticed within seconds, and the day's target is still met.

const TZ = 'Asia/Ho_Chi_Minh';
const zone = new Zone(TZ);
const DAY = '2024-08-15';
const CLIP = 30_000;
const directive: Campaign = {
  id: 'ihanoi-2024',
  media: { url: 'file:///spot.mp4', sha256: 'ab'.repeat(32), durationMs: CLIP },
  timesPerDay: 10,
  windows: ['06:30-08:30', '16:30-19:00'],
};
const local = (h: number, m: number, s = 0): number => zone.localToEpoch(DAY, h * 3600 + m * 60 + s);

async function clockJumps(r: EngineRig): Promise<Array<{ ts: string; detail: { deltaMs: number } }>> {
  return (await r.store.outboxPeek(1000))
    .filter((x) => x.kind === 'event')
    .map((x) => JSON.parse(x.payload) as { type: string; ts: string; detail: { deltaMs: number } })
    .filter((e) => e.type === 'clock-jump');
}

for (const [name, deltaMs, at] of [
  ['+1 h', 3_600_000, local(6, 43, 40)], // 10 s into the first spot (06:43:30)
  ['-1 h', -3_600_000, local(16, 31, 40)], // 10 s into the fifth spot (16:31:30)
] as const) {
  t.test(`clock stepped ${name} mid-spot: durationMs from monotonic time, noticed at once, the day still 10/10`, async (t) => {
    const r = await engineRig(t, path.join(tempDir(t), 'agent.db'), zone.dayBounds(DAY).start, [directive]);
    await r.clock.advanceTo(at, r.settle);
    t.equal(r.player.busy(), true, 'a spot is playing at the step');
    const to = at + deltaMs;
    r.clock.jump(to);
    await r.clock.advanceTo(to + 5_000, r.settle);
    await r.clock.advanceTo(to + 25_000, r.settle); // the spot ends 20 s of real time after the step
    t.equal(r.learned.get(directive.media.sha256) ?? CLIP, CLIP, 'the step is never learned as the clip length');
    const jumps = await clockJumps(r);
    t.equal(jumps.length, 1, 'one clock-jump event');
    const noticedAfter = Date.parse(jumps[0]?.ts ?? "") - to;
    t.ok(noticedAfter >= 0 && noticedAfter <= 3_000, `noticed ${noticedAfter} ms after the step (virtual time)`);
    t.ok(Math.abs((jumps[0]?.detail.deltaMs ?? 0) - deltaMs) < 3_000, 'the event says by how much');

    await r.clock.advanceTo(zone.dayBounds(DAY).end - 1, r.settle);
    const rows = await r.store.playsForDay(DAY);
    for (const p of rows) {
      t.ok(p.durationMs !== null && p.durationMs >= 0 && p.durationMs <= CLIP + 1_000, `durationMs ${p.durationMs} within [0, clip + 1 s]`);
      t.ok(p.endedAt !== null && p.endedAt >= p.startedAt, 'endedAt >= startedAt');
      t.equal(p.endedAt, p.startedAt + (p.durationMs ?? NaN), 'endedAt = startedAt + durationMs');
    }
    const completed = rows.filter((p) => p.outcome === 'completed');
    t.equal(completed.length, 10, `the day's target met (${completed.length} of 10)`);
    t.ok(rows.every((p) => p.outcome === 'completed'), 'the spot under way at the step completed');
    const starts = completed.map((p) => p.startedAt).sort((a, b) => a - b);
    t.ok(starts.slice(1).every((s, i) => s - starts[i]! >= CLIP), 'no burst: never two spots at once');
  });
}

t.test('a failure rest is monotonic: a clock stepped back an hour does not stretch it', async (t) => {
  let failing = true;
  const r = await engineRig(t, path.join(tempDir(t), 'agent.db'), local(6, 40), [directive], { fail: () => failing });
  await r.clock.advanceTo(local(6, 43, 31), r.settle);
  t.equal((await r.store.playsForDay(DAY)).filter((p) => p.outcome === 'failed').length, 1, 'the first slot failed');
  failing = false;
  r.clock.jump(local(5, 43, 31));
  // The rest is 30 s of real time; then the campaign (behind now? no: the wall went back) plays again.
  await r.clock.advanceTo(r.clock.now() + 60_000, r.settle);
  t.equal(r.engine.plan()?.campaigns[0]?.campaignId, 'ihanoi-2024', 'the campaign is planned again after 30 s of real time');
  t.ok(r.engine.plan()?.slots.some((s) => s.campaignId === 'ihanoi-2024'), 'with slots, not resting for an hour');
});
