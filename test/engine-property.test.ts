import fc from 'fast-check';
import t from 'tap';
import path from 'node:path';
import { VirtualClock } from '../agent/core/clock.js';
import type { Campaign, Override } from '../agent/core/types.js';
import type { CampaignPlan } from '../agent/schedule/planner.js';
import { Zone } from '../agent/schedule/zoned.js';
import { engineRig, type EngineRig } from './helpers/engine-rig.js';
import { tempDir } from './helpers/tmp.js';

// Issue 8 item 6: the real Engine and SqliteStore on a virtual clock, over one random day of
// windows, targets, clip lengths (declared or not), power cuts (the engine and player die, a
// new engine starts on the same store file), overrides and their clearing. Invariants: plays
// only in windows, never above target, a campaign's plays never closer than the plan's spacing
// allows outside a catch-up (and never overlapping), the counts the engine reports equal the
// store's completed rows, and play seq gapless.

const TZ = 'Asia/Ho_Chi_Minh';
const zone = new Zone(TZ);
const D = '2024-08-15';
const day0 = zone.dayBounds(D).start;
const dayEnd = zone.dayBounds(D).end;

const hms = (s: number): string => [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60].map((n) => String(n).padStart(2, '0')).join(':');
const windowArb = fc.tuple(fc.integer({ min: 0, max: 86_000 }), fc.integer({ min: 120, max: 4 * 3600 })).map(([s, len]) => `${hms(s)}-${hms(Math.min(86_400, s + len))}`);

interface Spec {
  lengthMs: number;
  /** The assignment's durationMs: the clip's, none, or a wrong one (30 s, the old default). */
  declared: 'true' | 'none' | 'wrong';
  timesPerDay: number;
  windows: string[];
  priority: number;
}
const specArb: fc.Arbitrary<Spec> = fc.record({
  lengthMs: fc.oneof(fc.integer({ min: 2_000, max: 60_000 }), fc.constantFrom(2_000, 5_000)),
  declared: fc.constantFrom('true', 'none', 'wrong'),
  timesPerDay: fc.integer({ min: 1, max: 12 }),
  windows: fc.array(windowArb, { minLength: 1, maxLength: 2 }),
  priority: fc.integer({ min: 0, max: 2 }),
});
const runArb = fc.record({
  specs: fc.array(specArb, { minLength: 1, maxLength: 3 }),
  // [start minute, length minutes] of power cuts
  outages: fc.array(fc.tuple(fc.integer({ min: 0, max: 1430 }), fc.integer({ min: 1, max: 120 })), { maxLength: 3 }),
  override: fc.option(fc.record({ at: fc.integer({ min: 0, max: 1400 }), campaign: fc.nat(), timesPerDay: fc.integer({ min: 1, max: 15 }), clearAt: fc.option(fc.integer({ min: 1, max: 600 }), { nil: undefined }) }), { nil: undefined }),
});

interface Started {
  campaignId: string;
  at: number;
  cp: CampaignPlan | undefined;
}

t.test('engine property: windows, targets, spacing, counts and seq over random days with cuts and overrides', async (t) => {
  let run = 0;
  await fc.assert(
    fc.asyncProperty(runArb, async ({ specs, outages, override }) => {
      const dir = tempDir(t, `engine-prop-${run++}-`);
      const file = path.join(dir, 'agent.db');
      const campaigns: Campaign[] = specs.map((s, i) => ({
        id: `c${i}`,
        media: { url: `file:///c${i}.mp4`, sha256: String(i).repeat(64).slice(0, 64), ...(s.declared === 'none' ? {} : { durationMs: s.declared === 'true' ? s.lengthMs : 30_000 }) },
        timesPerDay: s.timesPerDay,
        windows: s.windows,
        priority: s.priority,
      }));
      const lengthOf = new Map(campaigns.map((c, i) => [c.media.sha256, specs[i]!.lengthMs]));
      const clock = new VirtualClock(day0);
      const learned = new Map<string, number>();
      const started: Started[] = [];
      const targets = new Map(campaigns.map((c) => [c.id, new Set([c.timesPerDay])]));
      let ov: Override | null = null;

      const boot = async (): Promise<EngineRig> => {
        const r = await engineRig(t, file, clock.now(), campaigns, {
          clock,
          learned,
          engine: {
            resolve: (m) => ({ path: m.url, sha256: m.sha256, durationMs: lengthOf.get(m.sha256)! }),
            maxSleepMs: 6 * 3600_000,
            jumpCheckMs: 0,
          },
        });
        const play = r.player.playSpot.bind(r.player);
        r.player.playSpot = async (req, h) => {
          started.push({ campaignId: req.campaignId, at: clock.now(), cp: r.engine.plan()?.campaigns.find((c) => c.campaignId === req.campaignId) });
          return play(req, h);
        };
        if (ov) await r.setOverride(ov);
        return r;
      };

      // Time-ordered edges: cuts, restores, override set and clear.
      type Edge = { at: number; kind: 'cut' | 'up' | 'override' | 'clear' };
      const edges: Edge[] = [];
      for (const [m, len] of outages) edges.push({ at: day0 + m * 60_000, kind: 'cut' }, { at: Math.min(dayEnd - 1, day0 + (m + len) * 60_000), kind: 'up' });
      const target = override ? campaigns[override.campaign % campaigns.length]! : undefined;
      if (override && target) {
        edges.push({ at: day0 + override.at * 60_000, kind: 'override' });
        if (override.clearAt !== undefined) edges.push({ at: Math.min(dayEnd - 1, day0 + (override.at + override.clearAt) * 60_000), kind: 'clear' });
      }
      edges.sort((a, b) => a.at - b.at);

      let r: EngineRig | undefined = await boot();
      let down = 0;
      for (const e of edges) {
        await clock.advanceTo(e.at, r?.settle);
        if (e.kind === 'cut') {
          if (down++ === 0) {
            await r!.crash();
            r = undefined;
          }
        } else if (e.kind === 'up') {
          if (--down === 0) r = await boot();
        } else if (e.kind === 'override') {
          ov = { version: 1, campaigns: { [target!.id]: { timesPerDay: override!.timesPerDay } } };
          targets.get(target!.id)!.add(override!.timesPerDay);
          if (r) await r.setOverride(ov);
        } else {
          ov = null;
          if (r) await r.setOverride(null);
        }
      }
      if (!r) r = await boot();
      await clock.advanceTo(dayEnd - 1, r.settle);
      const reported = await r.engine.compliance(D);
      const rows = await r.store.playsForDay(D);

      for (const c of campaigns) {
        const mine = rows.filter((p) => p.campaignId === c.id);
        const completed = mine.filter((p) => p.outcome === 'completed');
        const spans = r.engine.plan()!.campaigns.find((x) => x.campaignId === c.id)?.windows ?? [];
        // plays only in windows
        for (const p of mine) {
          if (!p.inWindow || !spans.some((w) => p.startedAt >= w.start && p.startedAt < w.end)) throw new Error(`${c.id}: a play at ${zone.formatTime(p.startedAt)} outside its windows`);
        }
        // never above target
        const most = Math.max(...targets.get(c.id)!);
        if (completed.length > most) throw new Error(`${c.id}: ${completed.length} completed, above every target (${most})`);
        // counts equal the store's completed rows (today's compliance also counts the spot under way)
        const rep = reported.find((x) => x.campaignId === c.id);
        const underWay = mine.filter((p) => p.outcome === null).length;
        if ((rep?.played ?? 0) !== completed.length + underWay) throw new Error(`${c.id}: reported ${rep?.played}, store has ${completed.length} completed and ${underWay} under way`);
        // spacing: consecutive starts of the campaign
        const starts = started.filter((s) => s.campaignId === c.id);
        const others = campaigns.filter((x) => x.id !== c.id).reduce((sum, x) => sum + lengthOf.get(x.media.sha256)!, 0);
        for (let i = 1; i < starts.length; i++) {
          const a = starts[i - 1]!;
          const b = starts[i]!;
          const gap = b.at - a.at;
          const own = lengthOf.get(c.media.sha256)!;
          if (gap < own) throw new Error(`${c.id}: two plays overlap (${gap} ms apart, clip ${own} ms)`);
          if (b.cp?.catchUp || !a.cp || !b.cp) continue;
          const spacing = Math.min(a.cp.spacingMs, b.cp.spacingMs);
          if (gap < spacing / 2 - others - 2) {
            throw new Error(`${c.id}: plays ${gap} ms apart at ${zone.formatTime(a.at)} and ${zone.formatTime(b.at)}, outside a catch-up, spacing ${spacing} ms`);
          }
        }
      }
      // seq gapless in the store
      const seqs = rows.map((p) => p.seq).filter((s): s is number => s !== null).sort((x, y) => x - y);
      if (seqs.some((s, i) => s !== i + 1)) throw new Error(`seq not gapless: ${seqs.join(',')}`);
      if (rows.filter((p) => p.outcome !== null).length !== seqs.length) throw new Error('a closed play without seq');
      await r.crash();
    }),
    { numRuns: Number(process.env.ENGINE_PROPERTY_RUNS ?? 40), seed: process.env.ENGINE_PROPERTY_SEED ? Number(process.env.ENGINE_PROPERTY_SEED) : undefined },
  );
  t.pass('every run held the invariants');
});
