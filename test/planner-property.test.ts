import fc from 'fast-check';
import t from 'tap';
import { parseWindow } from '../agent/protocol/schemas.js';
import type { Campaign } from '../agent/core/types.js';
import { plan, type OverrideLayer, type PlanInput } from '../agent/schedule/planner.js';
import { isoWeekday, Zone } from '../agent/schedule/zoned.js';

// Whatever the campaigns, windows, counts, overrides and time: spots never overlap, each
// starts inside its campaign's windows (after override) and not before now/busyUntil, and
// no campaign gets more than target - done.

const ZONES = ['Asia/Ho_Chi_Minh', 'Europe/Berlin', 'America/New_York', 'UTC', 'Australia/Lord_Howe'];
const DAYS = ['2024-08-15', '2024-03-31', '2024-10-27', '2024-03-10', '2024-11-03', '2024-04-07', '2024-10-06', '2024-12-31'];
const zones = new Map(ZONES.map((z) => [z, new Zone(z)]));

const hms = (s: number): string =>
  [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60].map((n) => String(n).padStart(2, '0')).join(':');

const windowArb = fc
  .tuple(fc.integer({ min: 0, max: 86_399 }), fc.integer({ min: 1, max: 6 * 3600 }))
  .map(([s, len]) => `${hms(s)}-${hms(Math.min(86_400, s + len))}`);
const windowsArb = fc.option(fc.array(windowArb, { minLength: 1, maxLength: 4 }), { nil: undefined });

const campaignArb = (id: string): fc.Arbitrary<Campaign> =>
  fc.record({
    id: fc.constant(id),
    media: fc.record({
      url: fc.constant(`file:///${id}.mp4`),
      sha256: fc.constant('c'.repeat(64)),
      durationMs: fc.option(fc.integer({ min: 1000, max: 300_000 }), { nil: undefined }),
    }),
    timesPerDay: fc.integer({ min: 0, max: 80 }),
    windows: windowsArb,
    priority: fc.option(fc.integer({ min: -2, max: 2 }), { nil: undefined }),
    weekdays: fc.option(fc.uniqueArray(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 7 }), { nil: undefined }),
    startDate: fc.option(fc.constantFrom('2024-01-01', '2024-08-15', '2024-10-27'), { nil: undefined }),
    endDate: fc.option(fc.constantFrom('2024-03-31', '2024-08-15', '2024-12-31'), { nil: undefined }),
  }) as fc.Arbitrary<Campaign>;

const inputArb = fc
  .record({
    tz: fc.constantFrom(...ZONES),
    day: fc.constantFrom(...DAYS),
    n: fc.integer({ min: 1, max: 7 }),
    nowFrac: fc.double({ min: 0, max: 0.9999, noNaN: true }),
    busy: fc.option(fc.integer({ min: 0, max: 200_000 }), { nil: undefined }),
  })
  .chain((base) =>
    fc
      .tuple(
        fc.tuple(...Array.from({ length: base.n }, (_, i) => campaignArb(`c${i}`))),
        fc.array(fc.integer({ min: 0, max: 90 }), { minLength: base.n, maxLength: base.n }),
        fc.array(
          fc.record({
            names: fc.uniqueArray(fc.integer({ min: 0, max: base.n - 1 }), { maxLength: base.n }),
            timesPerDay: fc.option(fc.integer({ min: 0, max: 80 }), { nil: undefined }),
            windows: windowsArb,
            expiresFrac: fc.option(fc.double({ min: -0.5, max: 1.5, noNaN: true }), { nil: undefined }),
          }),
          { maxLength: 3 },
        ),
        fc.array(fc.integer({ min: 1000, max: 200_000 }), { minLength: base.n, maxLength: base.n }),
        fc.boolean(),
      )
      .map(([campaigns, counts, layers, learned, useLearned]) => ({ base, campaigns, counts, layers, learned, useLearned })),
  );

function localSeconds(zone: Zone, at: number): number {
  const [h, m, s] = zone.formatTime(at).split(':').map(Number);
  return h! * 3600 + m! * 60 + s!;
}

t.test('no plan overlaps spots, starts one outside its windows or before now, or exceeds target - done', async (t) => {
  let checked = 0;
  let slotsSeen = 0;
  fc.assert(
    fc.property(inputArb, ({ base, campaigns, counts, layers, learned, useLearned }) => {
      const zone = zones.get(base.tz)!;
      const { start, end } = zone.dayBounds(base.day);
      const now = Math.floor(start + base.nowFrac * (end - start));
      const busyUntil = base.busy === undefined ? undefined : now + base.busy;
      const overrides: OverrideLayer[] = layers.map((l, i) => {
        const layer: OverrideLayer = { source: i === 0 ? 'device' : `group/g${i}`, campaigns: {} };
        for (const k of l.names) {
          layer.campaigns[`c${k}`] = { ...(l.timesPerDay !== undefined ? { timesPerDay: l.timesPerDay } : {}), ...(l.windows ? { windows: l.windows } : {}) };
        }
        if (l.expiresFrac !== undefined) layer.expiresAt = Math.floor(start + l.expiresFrac * (end - start));
        return layer;
      });
      const input: PlanInput = {
        campaigns,
        overrides,
        counts: new Map(campaigns.map((c, i) => [c.id, counts[i]!])),
        now,
        timezone: base.tz,
        zone,
        ...(busyUntil !== undefined ? { busyUntil } : {}),
        ...(useLearned ? { durations: new Map(campaigns.map((c, i) => [c.id, learned[i]!])) } : {}),
      };
      const p = plan(input);
      const again = plan({ ...input, zone: new Zone(base.tz) });
      if (JSON.stringify(again) !== JSON.stringify(p)) throw new Error('not deterministic');

      const floor = Math.max(now, busyUntil ?? now);
      let prevEnd = -Infinity;
      for (const s of p.slots) {
        if (s.at < prevEnd) throw new Error(`overlap at ${zone.formatLocal(s.at)}`);
        if (s.at < floor) throw new Error('slot before now/busyUntil');
        if (s.at >= end) throw new Error('slot after the day');
        prevEnd = s.at + s.durationMs;
      }
      const active = campaigns.filter(
        (c) =>
          (!c.startDate || c.startDate <= base.day) &&
          (!c.endDate || c.endDate >= base.day) &&
          (!c.weekdays || c.weekdays.includes(isoWeekday(base.day))),
      );
      if (p.campaigns.map((c) => c.campaignId).join() !== active.map((c) => c.id).join()) throw new Error('active campaigns differ');
      for (const c of active) {
        // Independent effective state: the first live layer naming the campaign.
        const layer = overrides.find((l) => (l.expiresAt === undefined || l.expiresAt > now) && l.campaigns[c.id]);
        const o = layer?.campaigns[c.id];
        const target = o?.timesPerDay ?? c.timesPerDay;
        const windows = (o?.windows ?? c.windows ?? ['00:00-24:00']).map((w) => parseWindow(w)!);
        const done = counts[Number(c.id.slice(1))]!;
        const mine = p.slots.filter((s) => s.campaignId === c.id);
        if (mine.length > Math.max(0, target - done)) throw new Error(`${c.id}: ${mine.length} slots > ${target} - ${done}`);
        const cp = p.campaigns.find((x) => x.campaignId === c.id)!;
        if (cp.target !== target || cp.played !== done || cp.planned !== mine.length) throw new Error(`${c.id}: plan numbers`);
        if (cp.onTrack !== done + mine.length >= target) throw new Error(`${c.id}: onTrack`);
        for (const s of mine) {
          const w = cp.windows[s.windowIndex];
          if (!w || s.at < w.start || s.at >= w.end) throw new Error(`${c.id}: slot outside its span`);
          const sec = localSeconds(zone, s.at);
          if (!windows.some((x) => sec >= x.start && sec < x.end)) throw new Error(`${c.id}: ${zone.formatLocal(s.at)} outside ${JSON.stringify(o?.windows ?? c.windows)}`);
        }
      }
      const expiries = overrides.map((l) => l.expiresAt).filter((x): x is number => x !== undefined && x > now && x < end);
      if (p.replanAt !== Math.min(end, ...expiries)) throw new Error('replanAt');
      checked++;
      slotsSeen += p.slots.length;
    }),
    { numRuns: 600, seed: 20240815 },
  );
  t.equal(checked, 600);
  t.ok(slotsSeen > 1000, `the runs planned real work (${slotsSeen} slots)`);
});

t.test('on-track screens agree whatever their clock skew within a gap between instants', async (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 40 }),
      fc.constantFrom(...ZONES),
      fc.constantFrom(...DAYS),
      fc.double({ min: 0, max: 1, noNaN: true }),
      (n, tz, day, frac) => {
        const zone = zones.get(tz)!;
        const c: Campaign = { id: 'sync', media: { url: 'file:///s.mp4', sha256: 'd'.repeat(64), durationMs: 15_000 }, timesPerDay: n, windows: ['06:30-08:30', '16:30-19:00'] };
        const full = plan({ campaigns: [c], overrides: [], counts: new Map(), now: zone.dayBounds(day).start, timezone: tz, zone });
        // A screen that has played exactly the instants before `now` plans the rest of the same grid.
        const now = Math.floor(full.dayStart + frac * (full.dayEnd - full.dayStart));
        const done = full.slots.filter((s) => s.at < now).length;
        const later = plan({ campaigns: [c], overrides: [], counts: new Map([['sync', done]]), now, timezone: tz, zone });
        if (JSON.stringify(later.slots) !== JSON.stringify(full.slots.slice(done))) throw new Error('grid not kept');
      },
    ),
    { numRuns: 300, seed: 7 },
  );
  t.pass('grid kept for on-track screens');
});
