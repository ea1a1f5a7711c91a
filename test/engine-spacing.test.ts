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
