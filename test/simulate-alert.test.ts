import t from 'tap';
import { silentLogger } from '../agent/core/log.js';
import { parseOutage, simulate } from '../agent/sim/simulation.js';
import { Zone } from '../agent/schedule/zoned.js';

// `simulate --alert`: the real engine, planner and AlertController on a virtual clock: what a
// daily alert costs the day's targets.

const media = (n: number) => ({ url: `file:///c${n}.mp4`, sha256: String(n).padStart(64, '0'), durationMs: 30_000 });
const assignment = {
  version: 1,
  campaigns: [
    { id: 'noon', media: media(1), timesPerDay: 200, windows: ['11:00-13:00'] },
    { id: 'day', media: media(2), timesPerDay: 40, windows: ['06:00-22:00'] },
  ],
};

t.test('a daily alert is cut out of the windows: the shortfall is where the windows cannot hold it', async (t) => {
  const zone = new Zone('Asia/Ho_Chi_Minh');
  const base = { deviceId: 'sim-1', timezone: 'Asia/Ho_Chi_Minh', groups: ['all'], assignment, from: '2026-12-07', days: 2, outages: [], log: silentLogger() };
  const plain = await simulate(base);
  const rows = (xs: typeof plain.compliance, onTrack = false): string[] => xs.map((c) => `${c.day} ${c.campaignId} ${c.played}/${c.target}${onTrack ? ` ${c.onTrack}` : ''}`).sort();
  t.same(rows(plain.compliance), ['2026-12-07 day 40/40', '2026-12-07 noon 200/200', '2026-12-08 day 40/40', '2026-12-08 noon 200/200'], 'without the alert every target is met');
  const r = await simulate({ ...base, alerts: [parseOutage('10:30-12:30')!] });
  // noon keeps 12:30-13:00: 30 min of 30 s spots = 60 plays; day re-spreads its 40 over the rest of 06:00-22:00.
  t.same(rows(r.compliance, true), ['2026-12-07 day 40/40 true', '2026-12-07 noon 60/200 false', '2026-12-08 day 40/40 true', '2026-12-08 noon 60/200 false']);
  for (const day of ['2026-12-07', '2026-12-08']) {
    const from = zone.localToEpoch(day, 10.5 * 3600);
    const to = zone.localToEpoch(day, 12.5 * 3600);
    const inside = r.plays.filter((p) => p.startedAt >= from && p.startedAt < to);
    t.ok(inside.length > 0 && inside.every((p) => p.campaignId.startsWith('alert:')), `${day}: only alert showings during the alert (${inside.length})`);
    t.ok(inside.every((p) => p.inWindow === false), 'showings are not campaign plays');
  }
});
