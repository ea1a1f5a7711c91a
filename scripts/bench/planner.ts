import type { Campaign } from '../../agent/core/types.js';
import { plan, type PlanInput } from '../../agent/schedule/planner.js';
import { Zone } from '../../agent/schedule/zoned.js';

// plan() over one day for 1, 50 and 200 campaigns (goal: 200 under 5 ms, about linear).
// Inputs mimic a busy screen: 2-3 windows per campaign, 5-40 plays a day, 15-30 s clips,
// some counts already played, planning at 09:00 local on a DST day (the harder case).

const TZ = 'Europe/Berlin';
const DAY = '2024-10-27';
const WINDOW_SETS = [['06:30-08:30', '16:30-19:00'], ['07:00-09:00', '11:00-13:00', '17:00-20:00'], undefined, ['10:00-22:00']];

function campaigns(n: number): Campaign[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `campaign-${i}`,
    media: { url: `file:///c${i}.mp4`, sha256: 'f'.repeat(64), durationMs: 15_000 + (i % 4) * 5_000 },
    timesPerDay: 5 + ((i * 7) % 36),
    windows: WINDOW_SETS[i % WINDOW_SETS.length],
    priority: i % 3,
  }));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function measure(input: PlanInput, runs: number): { ms: number; slots: number } {
  let slots = 0;
  for (let i = 0; i < 20; i++) slots = plan(input).slots.length; // warm-up (JIT)
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    plan(input);
    times.push(performance.now() - t0);
  }
  return { ms: median(times), slots };
}

export async function bench(): Promise<void> {
  const now = new Zone(TZ).localToEpoch(DAY, 9 * 3600);
  console.log(`planner: plan() for one day (${TZ}, ${DAY}, a 25 h day), median of runs`);
  const sizes = [1, 50, 200];
  let base = 0;
  for (const n of sizes) {
    const cs = campaigns(n);
    const counts = new Map(cs.map((c, i) => [c.id, i % 5]));
    const input: PlanInput = { campaigns: cs, overrides: [{ source: 'device', campaigns: { 'campaign-0': { timesPerDay: 50 } } }], counts, now, timezone: TZ };
    const fresh = measure(input, n >= 200 ? 300 : 1000);
    const reused = measure({ ...input, zone: new Zone(TZ) }, n >= 200 ? 300 : 1000);
    if (n === 1) base = reused.ms;
    const perCampaign = reused.ms / n / base;
    console.log(
      `  ${String(n).padStart(3)} campaigns: ${reused.ms.toFixed(3)} ms with a reused Zone, ${fresh.ms.toFixed(3)} ms building one` +
        ` (${reused.slots} slots); per campaign ${perCampaign.toFixed(2)}x the 1-campaign time${n === 200 ? (fresh.ms < 5 ? '  [goal < 5 ms: met]' : '  [goal < 5 ms: MISSED]') : ''}`,
    );
  }
}

// Run directly: node dist/scripts/bench/planner.js
if (import.meta.url === `file://${process.argv[1]}`) await bench();
