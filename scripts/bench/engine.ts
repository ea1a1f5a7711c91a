import { silentLogger } from '../../agent/core/log.js';
import type { Campaign } from '../../agent/core/types.js';
import { simulate } from '../../agent/sim/simulation.js';
import { SqliteStore } from '../../agent/store/sqlite-store.js';

/** Baseline: the store writes a simulation cannot avoid (one start and one end per play). */
async function storeOnly(plays: number): Promise<number> {
  const store = new SqliteStore({ file: ':memory:', log: silentLogger() });
  await store.start();
  const t0 = performance.now();
  for (let i = 0; i < plays; i++) {
    const id = await store.recordPlayStart({ campaignId: 'c', mediaSha256: 'ab'.repeat(32), day: '2025-01-01', scheduledAt: i, startedAt: i, inWindow: true, display: 'unknown', clockSynced: true });
    await store.recordPlayEnd(id, { endedAt: i + 1, durationMs: 1, outcome: 'completed', target: 10 }, 'bench');
  }
  const ms = performance.now() - t0;
  await store.stop();
  return ms;
}

/**
 * The whole engine (planner + SQLite store + virtual clock) simulating the directive: how many
 * simulated days per second, against the cost of the store writes alone (the baseline: the same
 * number of play rows written through the same store).
 */
export async function bench(): Promise<void> {
  const directive: Campaign = {
    id: 'ihanoi-2024',
    media: { url: 'file:///spot.mp4', sha256: 'ab'.repeat(32), durationMs: 30_000 },
    timesPerDay: 10,
    windows: ['06:30-08:30', '16:30-19:00'],
  };
  const days = 365;
  const log = silentLogger();
  const t0 = performance.now();
  const r = await simulate({ deviceId: 'bench', timezone: 'Asia/Ho_Chi_Minh', groups: [], assignment: { version: 1, campaigns: [directive] }, from: '2025-01-01', days, outages: [], log });
  const simMs = performance.now() - t0;
  const t1 = performance.now();
  const r2 = await simulate({
    deviceId: 'bench', timezone: 'Asia/Ho_Chi_Minh', groups: [], assignment: { version: 1, campaigns: [directive] }, from: '2025-01-01', days,
    outages: [{ start: 6 * 3600, end: 9 * 3600 }], log,
  });
  const outMs = performance.now() - t1;
  const baseMs = await storeOnly(r.plays.length);
  const ok = r.compliance.filter((c) => c.onTrack).length;
  const ok2 = r2.compliance.filter((c) => c.onTrack).length;
  console.log(`simulate ${days} days, directive (10/day, 2 windows):            ${simMs.toFixed(0)} ms (${((days / simMs) * 1000).toFixed(0)} days/s), ${ok}/${days} days on track, ${r.plays.length} plays`);
  console.log(`baseline: the same ${r.plays.length} plays' store writes alone:      ${baseMs.toFixed(0)} ms; simulate costs ${(simMs / baseMs).toFixed(1)}x that`);
  console.log(`simulate ${days} days with a daily 06:00-09:00 power cut:      ${outMs.toFixed(0)} ms (${((days / outMs) * 1000).toFixed(0)} days/s), ${ok2}/${days} days on track`);
}
