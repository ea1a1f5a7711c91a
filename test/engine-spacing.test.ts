import t from 'tap';
import path from 'node:path';
import type { Campaign } from '../agent/core/types.js';
import { Zone } from '../agent/schedule/zoned.js';
import { engineRig } from './helpers/engine-rig.js';
import { tempDir, type Teardown } from './helpers/tmp.js';

// Issue 8 item 2: an assignment without durationMs (the contract makes it optional) and no
// length learned yet must not bunch a campaign's plays, whatever length the engine assumes.

const TZ = 'Asia/Ho_Chi_Minh';
const zone = new Zone(TZ);
const D = '2024-08-15';
const CLIP = 2_000;
const spot = (timesPerDay: number, window: string, declaredMs?: number): Campaign => ({
  id: 'short',
  media: { url: 'file:///short.mp4', sha256: 'ef'.repeat(32), ...(declaredMs !== undefined ? { durationMs: declaredMs } : {}) },
  timesPerDay,
  windows: [window],
});

async function run(t: Teardown, timesPerDay: number, window: string, declaredMs?: number): Promise<{ starts: number[]; windowStart: number; windowEnd: number }> {
  const [from, to] = window.split('-') as [string, string];
  const secs = (hms: string): number => hms.split(':').map(Number).reduce((a, b) => a * 60 + b, 0);
  const windowStart = zone.localToEpoch(D, secs(from));
  const windowEnd = zone.localToEpoch(D, secs(to));
  const r = await engineRig(t, path.join(tempDir(t), 'agent.db'), windowStart - 60_000, [spot(timesPerDay, window, declaredMs)], {
    clipLength: declaredMs === undefined ? 'declared' : 'none',
    playerLengthMs: CLIP,
  });
  await r.clock.advanceTo(windowEnd + 60_000, r.settle);
  const rows = (await r.store.playsForDay(D)).filter((p) => p.outcome === 'completed');
  return { starts: rows.map((p) => p.startedAt - windowStart), windowStart, windowEnd };
}

const gapsOf = (starts: number[]): number[] => starts.slice(1).map((s, i) => s - starts[i]!);

t.test('60 s window, 6 plays of a 2 s clip of unknown length: every 10 s, never back to back', async (t) => {
  const { starts } = await run(t, 6, '10:00:00-10:01:00');
  const gaps = gapsOf(starts);
  t.comment(`starts (s into the window): ${starts.map((s) => s / 1000).join(' ')}; gaps: ${gaps.map((g) => g / 1000).join(' ')}`);
  t.equal(starts.length, 6, 'all 6 played');
  t.ok(gaps.every((g) => g >= 10_000 - 1), 'no two closer than the grid spacing (60 s / 6)');
});

t.test('50 s window, 5 plays of a 2 s clip of unknown length: spread over the window, not bunched', async (t) => {
  const { starts } = await run(t, 5, '10:00:00-10:00:50');
  const gaps = gapsOf(starts);
  t.comment(`starts (s into the window): ${starts.map((s) => s / 1000).join(' ')}; gaps: ${gaps.map((g) => g / 1000).join(' ')}`);
  t.equal(starts.length, 5, 'all 5 played');
  t.ok(gaps.every((g) => g >= 10_000 - 1), 'no two closer than the grid spacing (50 s / 5)');
  t.ok(starts[4]! - starts[0]! >= 35_000, `spread over the window (${(starts[4]! - starts[0]!) / 1000} s first to last)`);
});

t.test('a wrongly declared length (30 s for a 2 s clip): the guard keeps the plays apart, never back to back', async (t) => {
  for (const [n, window] of [[6, '10:00:00-10:01:00'], [5, '10:00:00-10:00:50']] as const) {
    const { starts } = await run(t, n, window, 30_000);
    const gaps = gapsOf(starts);
    t.comment(`${window} x${n}: starts ${starts.map((s) => s / 1000).join(' ')}; gaps ${gaps.map((g) => g / 1000).join(' ')}`);
    t.ok(starts.length >= n - 1, `${starts.length} of ${n} played`);
    t.ok(gaps.every((g) => g >= CLIP + 1_000), 'never back to back (at least 1 s of loop between the end of one and the next)');
  }
});

t.test('a raised target right after a play: the missed instant goes midway into a grid gap, never back to back, the grid kept', async (t) => {
  // 120 in 20 min (10 s grid), raised to 240 (5 s grid) at +17.3 s, just after the play at +15 s ended.
  const c: Campaign = { id: 'spot', media: { url: 'file:///x.mp4', sha256: 'ab'.repeat(32), durationMs: CLIP }, timesPerDay: 120, windows: ['10:00:00-10:20:00'] };
  const w0 = zone.localToEpoch(D, 10 * 3600);
  const r = await engineRig(t, path.join(tempDir(t), 'agent.db'), w0 - 4_000, [c], { clipLength: 'declared' });
  await r.clock.advanceTo(w0 + 17_300, r.settle);
  await r.setOverride({ version: 1, campaigns: { spot: { timesPerDay: 240 } } });
  await r.clock.advanceTo(w0 + 60_000, r.settle);
  const starts = (await r.store.playsForDay(D)).map((p) => p.startedAt - w0);
  t.comment(`starts: ${starts.map((s) => s / 1000).join(' ')}`);
  t.ok(gapsOf(starts).every((g) => g >= 2_500), 'half a step (2.5 s) or more between plays: never back to back');
  t.ok(starts.slice(4).every((s) => s % 5_000 === 2_500), 'on the 5 s grid from then on');
  t.same(starts.slice(0, 5), [5_000, 15_000, 17_500, 20_000, 22_500], 'the missed play midway between 17.5 and 22.5');
});
