import t from 'tap';
import path from 'node:path';
import { VirtualClock, flushJobs } from '../agent/core/clock.js';
import { silentLogger } from '../agent/core/log.js';
import type { Assignment, Campaign } from '../agent/core/types.js';
import { Engine } from '../agent/engine/engine.js';
import { EventRecorder } from '../agent/events/recorder.js';
import { simulate } from '../agent/sim/simulation.js';
import { SimulatedPlayer } from '../agent/player/simulated.js';
import { effectiveState, type EffectiveState } from '../agent/schedule/desired.js';
import { Zone } from '../agent/schedule/zoned.js';
import { SqliteStore } from '../agent/store/sqlite-store.js';
import { tempDir, type Teardown } from './helpers/tmp.js';

const TZ = 'Asia/Ho_Chi_Minh';
const zone = new Zone(TZ);
const SHA = 'ab'.repeat(32);
const directive: Campaign = {
  id: 'ihanoi-2024',
  media: { url: 'file:///spot.mp4', sha256: SHA, durationMs: 30_000 },
  startDate: '2024-08-15',
  endDate: '2024-10-10',
  timesPerDay: 10,
  windows: ['06:30-08:30', '16:30-19:00'],
};
const assignment = (campaigns: Campaign[], version = 1): Assignment => ({ version, campaigns });

t.test('simulate: the directive is met 10/10 on every day inside its dates and nothing outside', async (t) => {
  const r = await simulate({ deviceId: 'd', timezone: TZ, groups: ['all'], assignment: assignment([directive]), from: '2024-08-13', days: 60, outages: [], log: silentLogger() });
  const days = r.compliance.map((c) => c.day);
  t.equal(days[0], '2024-08-15', 'nothing before startDate');
  t.equal(days[days.length - 1], '2024-10-10', 'nothing after endDate');
  t.equal(r.compliance.length, 57);
  t.ok(r.compliance.every((c) => c.played === 10 && c.target === 10 && c.onTrack), 'every day 10/10');
  t.ok(r.plays.every((p) => p.inWindow && p.outcome === 'completed'));
  t.equal(r.plays.length, 570, 'never more than the target');
  // on track: the ideal grid, (i + 0.5)·T/N with T = 270 min → every 27 min from 06:43:30
  const first = r.plays.filter((p) => p.day === '2024-08-15').map((p) => zone.formatTime(p.startedAt));
  t.same(first, ['06:43:30', '07:10:30', '07:37:30', '08:04:30', '16:31:30', '16:58:30', '17:25:30', '17:52:30', '18:19:30', '18:46:30']);
});

t.test('simulate: still 10/10 with a daily power cut over the whole morning window', async (t) => {
  const r = await simulate({
    deviceId: 'd', timezone: TZ, groups: [], assignment: assignment([directive]), from: '2024-08-15', days: 57,
    outages: [{ start: 6 * 3600, end: 9 * 3600 }], log: silentLogger(),
  });
  t.equal(r.compliance.length, 57);
  t.ok(r.compliance.every((c) => c.played === 10 && c.onTrack), 'every day 10/10 after the outage');
  const day = r.plays.filter((p) => p.day === '2024-08-20');
  t.ok(day.every((p) => zone.formatTime(p.startedAt) >= '16:30:00'), 'all plays in the afternoon window');
  const gaps = day.slice(1).map((p, i) => p.startedAt - day[i]!.startedAt);
  t.ok(gaps.every((g) => g >= 30_000), 'spots never overlap');
  // The catch-up keeps one even spread (150 min / 10 = 15 min) instead of bunching after each
  // re-plan; the last play rejoins the shared grid (18:46:30) once the campaign is on track again.
  t.same(gaps.slice(0, 8), Array(8).fill(15 * 60_000), 'catch-up evenly spread every 15 min');
  t.equal(zone.formatTime(day[9]!.startedAt), '18:46:30');
});

t.test('simulate: an outage mid-spot leaves it interrupted, uncounted, and the day still made up', async (t) => {
  // A 60 s spot: the first slot is 06:43:30 (27-min grid), so a cut at 06:44 interrupts it.
  const long = { ...directive, media: { ...directive.media, durationMs: 60_000 } };
  const r = await simulate({
    deviceId: 'd', timezone: TZ, groups: [], assignment: assignment([long]), from: '2024-08-15', days: 2,
    outages: [{ start: 6 * 3600 + 44 * 60, end: 7 * 3600 }], log: silentLogger(),
  });
  t.equal(r.plays.filter((p) => p.outcome === 'interrupted').length, 2, 'one interrupted play a day');
  t.ok(r.plays.some((p) => p.outcome === 'interrupted'), 'the cut play is recorded interrupted');
  t.ok(r.compliance.every((c) => c.played === 10), 'and the target still met');
});

interface Rig {
  clock: VirtualClock;
  store: SqliteStore;
  player: SimulatedPlayer;
  engine: Engine;
  state: { desired: EffectiveState };
  settle: () => Promise<void>;
}

async function rig(t: Teardown, file: string, at: number, campaigns: Campaign[], clock = new VirtualClock(at)): Promise<Rig> {
  const store = new SqliteStore({ file, log: silentLogger() });
  await store.start();
  const state = { desired: effectiveState({ assignments: [{ source: 'device', version: 1, doc: assignment(campaigns), appliedAt: at }], overrides: [] }, []) };
  const player = new SimulatedPlayer({ clock });
  const engine = new Engine({
    clock, store, player, log: silentLogger(), deviceId: 'dev', timezone: TZ,
    desired: () => state.desired,
    resolve: (m) => ({ path: m.url, sha256: m.sha256, durationMs: m.durationMs ?? 30_000 }),
    events: new EventRecorder({ store, clock, log: silentLogger() }),
  });
  await player.start();
  await engine.start();
  const settle = async (): Promise<void> => {
    await flushJobs();
    await engine.whenIdle();
  };
  await settle();
  await clock.advanceTo(at, settle);
  t.teardown(async () => {
    await engine.stop();
    await store.stop().catch(() => undefined);
  });
  return { clock, store, player, engine, state, settle };
}

t.test('a restart mid-day from the same store neither resets nor double-counts', async (t) => {
  const file = path.join(tempDir(t), 'agent.db');
  const day0 = zone.dayBounds('2024-08-15').start;
  const a = await rig(t, file, day0, [directive]);
  await a.clock.advanceTo(day0 + 8 * 3600_000, a.settle); // 08:00: three morning plays done
  t.equal((await a.store.countCompleted('2024-08-15')).get('ihanoi-2024'), 3);
  // 08:04:40 is mid-spot (08:04:30 + 10 s): a crash here
  await a.clock.advanceTo(zone.localToEpoch('2024-08-15', 8 * 3600 + 4 * 60 + 40), a.settle);
  t.equal(a.player.busy(), true, 'a spot is playing at the crash');
  await a.engine.stop();
  a.player.kill();
  await a.store.stop();

  const b = await rig(t, file, a.clock.now(), [directive], a.clock);
  const rows = await b.store.playsForDay('2024-08-15');
  t.equal(rows.filter((r) => r.outcome === 'interrupted').length, 1, 'the crashed play is closed as interrupted');
  t.equal((await b.store.countCompleted('2024-08-15')).get('ihanoi-2024'), 3, 'counts survived, the crashed one not counted');
  await b.clock.advanceTo(zone.dayBounds('2024-08-15').end - 1, b.settle);
  t.equal((await b.store.countCompleted('2024-08-15')).get('ihanoi-2024'), 10, 'the day still ends 10/10');
  const seqs = (await b.store.playsForDay('2024-08-15')).map((r) => r.seq).sort((x, y) => (x ?? 0) - (y ?? 0));
  t.same(seqs, Array.from({ length: 11 }, (_, i) => i + 1), 'seq gapless across the restart');
});

t.test('a wall-clock step forward (NTP after boot) never bursts plays and is reported', async (t) => {
  const file = path.join(tempDir(t), 'agent.db');
  const boot = zone.localToEpoch('2024-08-15', 6 * 3600); // fake-hwclock said 06:00
  const r = await rig(t, file, boot, [directive]);
  await r.clock.advanceTo(r.clock.now() + 60_000, r.settle);
  r.clock.jump(zone.localToEpoch('2024-08-15', 17 * 3600)); // NTP: it is really 17:00
  await r.clock.advanceTo(r.clock.now() + 40_000, r.settle);
  const events = (await r.store.outboxPeek(100)).filter((x) => x.kind === 'event').map((x) => JSON.parse(x.payload) as { type: string });
  t.ok(events.some((e) => e.type === 'clock-jump'), 'clock-jump event recorded');
  await r.clock.advanceTo(r.clock.now() + 10 * 60_000, r.settle);
  const starts = r.player.history.map((h) => h.requestedAt);
  t.ok(starts.length <= 1, `no burst of missed morning plays (${starts.length} in 10 min)`);
  await r.clock.advanceTo(zone.dayBounds('2024-08-15').end - 1, r.settle);
  const rows = await r.store.playsForDay('2024-08-15');
  t.equal(rows.filter((x) => x.outcome === 'completed').length, 10, 'the rest of the day makes up the target');
  const gaps = rows.slice(1).map((p, i) => p.startedAt - rows[i]!.startedAt);
  t.ok(gaps.every((g) => g >= 30_000), 'no overlaps');
});

t.test('play-now while a spot plays is queued after it; failed plays do not count', async (t) => {
  const file = path.join(tempDir(t), 'agent.db');
  const day0 = zone.localToEpoch('2024-08-15', 6 * 3600 + 43 * 60 + 30);
  const other: Campaign = { ...directive, id: 'other', media: { ...directive.media, sha256: 'cd'.repeat(32) }, timesPerDay: 1 };
  const r = await rig(t, file, day0, [directive, other]);
  t.equal(r.player.busy(), true, 'the slot at 06:43:30 started');
  t.same(r.engine.playNow('other'), { queued: true });
  t.throws(() => r.engine.playNow('nope'), /no campaign nope/);
  // Issue 10 item 6: a campaign never stacks up ahead of the others.
  t.throws(() => r.engine.playNow('other'), /other already has a spot waiting for the player/, 'a second play-now of a waiting campaign');
  await r.clock.advanceTo(r.clock.now() + 61_000, r.settle);
  const rows = await r.store.playsForDay('2024-08-15');
  t.same(rows.map((x) => [x.campaignId, x.outcome]), [['ihanoi-2024', 'completed'], ['other', 'completed']]);
  t.equal(rows[1]!.startedAt, rows[0]!.startedAt + 30_000, 'played right after, not over it');
});

t.test('failed plays are recorded as proof but never counted', async (t) => {
  const r = await simulate({
    deviceId: 'd', timezone: TZ, groups: [], assignment: assignment([directive]), from: '2024-08-15', days: 1, outages: [], log: silentLogger(),
    fail: () => true,
  });
  t.equal(r.compliance[0]?.played, 0);
  t.equal(r.compliance[0]?.onTrack, false);
  t.ok(r.plays.length >= 10 && r.plays.every((p) => p.outcome === 'failed'), `${r.plays.length} failed plays recorded`);
  const perMinute = new Map<number, number>();
  for (const p of r.plays) perMinute.set(Math.floor(p.startedAt / 60_000), (perMinute.get(Math.floor(p.startedAt / 60_000)) ?? 0) + 1);
  t.ok(Math.max(...perMinute.values()) <= 2, 'a failing file is retried at the planned pace, not in a tight loop');
});

t.test('an override raises the target until its expiresAt, then the assignment rules again', async (t) => {
  const file = path.join(tempDir(t), 'agent.db');
  const day0 = zone.dayBounds('2024-08-15').start;
  const r = await rig(t, file, day0, [directive]);
  // Operator at 00:00: 20 a day until 12:00 local.
  const expiresAt = zone.localToEpoch('2024-08-15', 12 * 3600);
  r.state.desired = effectiveState(
    {
      assignments: [{ source: 'device', version: 1, doc: assignment([directive]), appliedAt: day0 }],
      overrides: [{ source: 'device', version: 1, doc: { version: 1, campaigns: { 'ihanoi-2024': { timesPerDay: 20 } }, expiresAt: new Date(expiresAt).toISOString() }, appliedAt: day0 }],
    },
    [],
  );
  r.engine.replan('override');
  await r.settle();
  t.equal(r.engine.plan()?.campaigns[0]?.target, 20, 'raised at once');
  t.equal(r.engine.plan()?.replanAt, expiresAt, 'the engine will wake at the expiry');
  await r.clock.advanceTo(expiresAt - 1, r.settle);
  const morning = (await r.store.countCompleted('2024-08-15')).get('ihanoi-2024');
  t.equal(morning, 9, 'the morning window played the raised grid (20 over 270 min: 9 instants before 08:30)');
  await r.clock.advanceTo(expiresAt + 1000, r.settle);
  t.equal(r.engine.plan()?.campaigns[0]?.target, 10, 'expired: back to the assignment');
  await r.clock.advanceTo(zone.dayBounds('2024-08-15').end - 1, r.settle);
  // 9 done, target 10 again and ahead of its grid: the one missing play comes at the grid's 10th instant.
  const rows = await r.store.playsForDay('2024-08-15');
  t.equal(rows.filter((x) => x.outcome === 'completed').length, 10, 'the day ends at the restored target');
  t.equal(zone.formatTime(rows.at(-1)!.startedAt), '18:46:30', 'the last one on the shared 10-a-day grid');
});
