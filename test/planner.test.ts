import t from 'tap';
import type { Campaign } from '../agent/core/types.js';
import { plan, type OverrideLayer, type Plan, type PlanInput } from '../agent/schedule/planner.js';
import { renderPlanText } from '../agent/schedule/timeline.js';
import { Zone } from '../agent/schedule/zoned.js';

const HCM = 'Asia/Ho_Chi_Minh';
const DAY = '2024-08-15'; // a Thursday
const hcm = new Zone(HCM);

function campaign(over: Partial<Campaign> & { id: string }): Campaign {
  return { media: { url: 'file:///x.mp4', sha256: 'a'.repeat(64), durationMs: 30_000 }, timesPerDay: 10, ...over };
}
const directive = (): Campaign => campaign({ id: 'ihanoi-2024', windows: ['06:30-08:30', '16:30-19:00'] });

function local(time: string, zone = hcm, day = DAY): number {
  const [h, m, s] = time.split(':').map(Number);
  return zone.localToEpoch(day, h! * 3600 + m! * 60 + (s ?? 0));
}
function run(p: Partial<PlanInput> & { now: number }): Plan {
  return plan({ campaigns: [directive()], overrides: [], counts: new Map(), timezone: HCM, ...p });
}
function times(p: Plan, id?: string, zone = hcm): string[] {
  return p.slots.filter((s) => id === undefined || s.campaignId === id).map((s) => zone.formatTime(s.at));
}

t.test('exact even spacing: the directive day', async (t) => {
  const p = run({ now: local('00:00') });
  t.equal(p.day, DAY);
  t.same(times(p), ['06:43:30', '07:10:30', '07:37:30', '08:04:30', '16:31:30', '16:58:30', '17:25:30', '17:52:30', '18:19:30', '18:46:30']);
  const cp = p.campaigns[0]!;
  t.match(cp, { campaignId: 'ihanoi-2024', target: 10, played: 0, planned: 10, onTrack: true, overridden: false });
  t.same(cp.windows, [
    { start: local('06:30'), end: local('08:30') },
    { start: local('16:30'), end: local('19:00') },
  ]);
  t.same(p.slots.map((s) => s.windowIndex), [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]);
  t.equal(p.dayStart, local('00:00'));
  t.equal(p.dayEnd - p.dayStart, 86_400_000);
  t.equal(p.replanAt, p.dayEnd);
  // Window time between consecutive starts is exactly T/N = 27 min.
  const spans = cp.windows;
  const wt = (at: number): number => spans.reduce((acc, w) => acc + Math.max(0, Math.min(at, w.end) - w.start), 0);
  for (let i = 1; i < p.slots.length; i++) t.equal(wt(p.slots[i]!.at) - wt(p.slots[i - 1]!.at), 27 * 60_000);
});

t.test('startDate and endDate inclusive at both ends; weekdays', async (t) => {
  const now = local('00:00');
  const only = (c: Campaign): Plan => plan({ campaigns: [c], overrides: [], counts: new Map(), now, timezone: HCM });
  t.equal(only(campaign({ id: 'a', startDate: DAY })).campaigns.length, 1, 'first day');
  t.equal(only(campaign({ id: 'a', endDate: DAY })).campaigns.length, 1, 'last day');
  t.equal(only(campaign({ id: 'a', startDate: DAY, endDate: DAY })).slots.length, 10, 'one-day campaign plays');
  t.equal(only(campaign({ id: 'a', startDate: '2024-08-16' })).campaigns.length, 0, 'day before start');
  t.equal(only(campaign({ id: 'a', endDate: '2024-08-14' })).campaigns.length, 0, 'day after end');
  t.equal(only(campaign({ id: 'a', weekdays: [1, 2, 3, 5, 6, 7] })).campaigns.length, 0, 'not on Thursdays');
  t.equal(only(campaign({ id: 'a', weekdays: [4] })).slots.length, 10, 'Thursdays only');
  // The day is the local one: 23:30 local on the 15th is the 15th even though UTC says 16:30Z.
  const late = plan({ campaigns: [campaign({ id: 'a', endDate: DAY })], overrides: [], counts: new Map(), now: local('23:30'), timezone: HCM });
  t.equal(late.day, DAY);
  t.equal(late.campaigns.length, 1);
});

t.test('whole-day window: N spots at the middle of N equal parts of the day', async (t) => {
  const p = plan({ campaigns: [campaign({ id: 'all-day', timesPerDay: 24 })], overrides: [], counts: new Map(), now: local('00:00'), timezone: HCM });
  t.equal(p.slots.length, 24);
  t.same(
    times(p),
    Array.from({ length: 24 }, (_, h) => `${String(h).padStart(2, '0')}:30:00`),
  );
  t.same(p.campaigns[0]!.windows, [{ start: p.dayStart, end: p.dayEnd }]);
});

t.test('two campaigns sharing a tight window: priority first, no overlap, shortfall reported', async (t) => {
  const a = campaign({ id: 'a-low', timesPerDay: 2, windows: ['08:00-08:02'] });
  const b = campaign({ id: 'b-high', timesPerDay: 2, windows: ['08:00-08:02'], priority: 5 });
  const p = plan({ campaigns: [a, b], overrides: [], counts: new Map(), now: local('07:00'), timezone: HCM });
  t.same(
    p.slots.map((s) => [s.campaignId, hcm.formatTime(s.at)]),
    [
      ['b-high', '08:00:30'],
      ['a-low', '08:01:00'],
      ['b-high', '08:01:30'],
    ],
  );
  t.match(p.campaigns.find((c) => c.campaignId === 'b-high'), { planned: 2, onTrack: true });
  t.match(p.campaigns.find((c) => c.campaignId === 'a-low'), { planned: 1, onTrack: false });
  // Equal priority: the campaign id breaks the tie, whatever the input order.
  const c1 = campaign({ id: 'x1', timesPerDay: 1, windows: ['08:00-08:10'] });
  const c2 = campaign({ id: 'x2', timesPerDay: 1, windows: ['08:00-08:10'] });
  const q = plan({ campaigns: [c2, c1], overrides: [], counts: new Map(), now: local('07:00'), timezone: HCM });
  t.same(q.slots.map((s) => [s.campaignId, hcm.formatTime(s.at)]), [
    ['x1', '08:05:00'],
    ['x2', '08:05:30'],
  ]);
});

t.test('more plays than fit: as many as fit, spacing >= clip length, onTrack false', async (t) => {
  const c = campaign({ id: 'crowded', timesPerDay: 20, windows: ['08:00-08:05'] });
  const p = plan({ campaigns: [c], overrides: [], counts: new Map(), now: local('07:00'), timezone: HCM });
  t.equal(p.slots.length, 10);
  t.same(times(p), Array.from({ length: 10 }, (_, i) => hcm.formatTime(local('08:00:15') + i * 30_000)));
  t.match(p.campaigns[0], { target: 20, planned: 10, onTrack: false });
  // A window shorter than the clip still gets one spot (it starts inside the window).
  const tiny = plan({ campaigns: [campaign({ id: 'tiny', timesPerDay: 3, windows: ['08:00:00-08:00:10'] })], overrides: [], counts: new Map(), now: local('07:00'), timezone: HCM });
  t.same(times(tiny), ['08:00:05']);
  t.match(tiny.campaigns[0], { planned: 1, onTrack: false });
});

t.test('catch-up after a morning outage: the remaining plays spread over the remaining window time', async (t) => {
  const after = run({ now: local('09:00') });
  t.same(times(after), ['16:37:30', '16:52:30', '17:07:30', '17:22:30', '17:37:30', '17:52:30', '18:07:30', '18:22:30', '18:37:30', '18:52:30']);
  t.match(after.campaigns[0], { played: 0, planned: 10, onTrack: true });
  // Back at 07:00 having missed the 06:43:30 spot: 10 plays over 90 + 150 min, every 24 min.
  const early = run({ now: local('07:00') });
  t.same(times(early), ['07:12:00', '07:36:00', '08:00:00', '08:24:00', '16:48:00', '17:12:00', '17:36:00', '18:00:00', '18:24:00', '18:48:00']);
  // Back at 09:00 with 2 done: 8 left over 150 min.
  const some = run({ now: local('09:00'), counts: new Map([['ihanoi-2024', 2]]) });
  t.equal(some.slots.length, 8);
  t.equal(some.slots[0]!.at, local('16:39:22') + 500, '8 over 150 min: every 18.75 min from 16:30 + 9.375 min');
});

t.test('on track: the grid, from the next unplayed instant; a spot at now is kept, one in progress is not repeated', async (t) => {
  const at10 = run({ now: local('12:00'), counts: new Map([['ihanoi-2024', 4]]) });
  t.same(times(at10), ['16:31:30', '16:58:30', '17:25:30', '17:52:30', '18:19:30', '18:46:30']);
  const atSlot = run({ now: local('06:43:30') });
  t.equal(atSlot.slots[0]!.at, local('06:43:30'), 'slot exactly at now is kept');
  t.equal(atSlot.slots.length, 10);
  const inProgress = run({ now: local('06:43:30'), counts: new Map([['ihanoi-2024', 1]]), busyUntil: local('06:44:00') });
  t.same(times(inProgress).slice(0, 2), ['07:10:30', '07:37:30'], 'the spot being played is not planned again');
  t.equal(inProgress.slots.length, 9);
});

t.test('busyUntil and late spots: nothing before the busy spot ends; a spot pushed back keeps the grid', async (t) => {
  const busy = run({ now: local('06:43:00'), busyUntil: local('06:44:10') });
  t.equal(busy.slots[0]!.at, local('06:44:10'));
  t.same(times(busy).slice(1, 3), ['07:10:30', '07:37:30']);
  // 40 s late (another campaign's spot ran over the instant): play it now, then the grid.
  const late = run({ now: local('06:44:10') });
  t.same(times(late).slice(0, 3), ['06:44:10', '07:10:30', '07:37:30']);
  t.equal(late.slots.length, 10);
  for (const s of [...busy.slots, ...late.slots]) t.ok(s.at >= local('06:44:10'));
  // Two instants missed (a clock step, a stall): no back-to-back burst, the rest is re-spread.
  const stepped = run({ now: local('07:11:00') });
  t.equal(stepped.slots.length, 10);
  t.ok(stepped.slots[1]!.at - stepped.slots[0]!.at > 20 * 60_000, 'spread, not a burst');
  // Missed longer ago than the grace: behind, re-spread.
  const stale = run({ now: local('06:54:00') });
  t.equal(times(stale)[0], '07:06:18', '10 plays over 96 + 150 min: the first 12.3 min in');
});

t.test('a target raised at midday by an override layer', async (t) => {
  const layer: OverrideLayer = { source: 'group/hanoi', campaigns: { 'ihanoi-2024': { timesPerDay: 20 } } };
  const p = run({ now: local('12:00'), counts: new Map([['ihanoi-2024', 5]]), overrides: [layer] });
  t.match(p.campaigns[0], { target: 20, played: 5, planned: 15, onTrack: true, overridden: true });
  t.same(times(p), Array.from({ length: 15 }, (_, i) => hcm.formatTime(local('16:35:00') + i * 600_000)));
  // Override windows replace the campaign's.
  const w = run({ now: local('12:00'), overrides: [{ source: 'device', campaigns: { 'ihanoi-2024': { windows: ['20:00-21:00'] } } }] });
  t.match(w.campaigns[0], { target: 10, overridden: true });
  t.same(w.campaigns[0]!.windows, [{ start: local('20:00'), end: local('21:00') }]);
  t.equal(times(w)[0], '20:03:00');
});

t.test('override precedence and expiry; future expiries set replanAt', async (t) => {
  const now = local('12:00');
  const device: OverrideLayer = { source: 'device', campaigns: { 'ihanoi-2024': { timesPerDay: 4 } }, expiresAt: local('14:00') };
  const group: OverrideLayer = { source: 'group/all', campaigns: { 'ihanoi-2024': { timesPerDay: 20 } }, expiresAt: local('18:00') };
  const p = run({ now, overrides: [device, group] });
  t.equal(p.campaigns[0]!.target, 4, 'device layer first');
  t.equal(p.replanAt, local('14:00'));
  const later = run({ now: local('14:00'), overrides: [device, group] });
  t.equal(later.campaigns[0]!.target, 20, 'expired device layer gives way to the group layer');
  t.equal(later.replanAt, local('18:00'));
  const expired = run({ now: local('18:30'), overrides: [device, group] });
  t.match(expired.campaigns[0], { target: 10, overridden: false });
  t.equal(expired.replanAt, expired.dayEnd);
  const tomorrow = run({ now, overrides: [{ ...group, expiresAt: local('12:00', hcm, '2024-08-16') }] });
  t.equal(tomorrow.replanAt, tomorrow.dayEnd, 'an expiry after today leaves replanAt at dayEnd');
  const other = run({ now, overrides: [{ source: 'device', campaigns: { other: { timesPerDay: 1 } } }, group] });
  t.equal(other.campaigns[0]!.target, 20, 'a layer that does not name the campaign is skipped');
});

t.test('Europe/Berlin spring forward 2024-03-31: 23 h whole-day window, window across the gap', async (t) => {
  const ber = new Zone('Europe/Berlin');
  const day = '2024-03-31';
  const now = ber.localToEpoch(day, 0);
  const whole = plan({ campaigns: [campaign({ id: 'w', timesPerDay: 23 })], overrides: [], counts: new Map(), now, timezone: 'Europe/Berlin' });
  t.equal(whole.dayEnd - whole.dayStart, 23 * 3_600_000);
  t.equal(whole.slots.length, 23);
  for (let i = 0; i < 23; i++) t.equal(whole.slots[i]!.at, whole.dayStart + (i + 0.5) * 3_600_000);
  t.same(times(whole, 'w', ber).slice(0, 4), ['00:30:00', '01:30:00', '03:30:00', '04:30:00']);
  const gap = plan({ campaigns: [campaign({ id: 'g', timesPerDay: 4, windows: ['01:00-04:00'] })], overrides: [], counts: new Map(), now, timezone: 'Europe/Berlin' });
  const w = gap.campaigns[0]!.windows;
  t.equal(w.length, 1);
  t.equal(w[0]!.end - w[0]!.start, 2 * 3_600_000, '01:00-04:00 lasts 2 h that day');
  t.same(gap.slots.map((s) => ber.formatLocal(s.at).slice(11, 19) + ber.formatLocal(s.at).slice(23)), ['01:15:00+01:00', '01:45:00+01:00', '03:15:00+02:00', '03:45:00+02:00']);
  const inside = plan({ campaigns: [campaign({ id: 'x', timesPerDay: 4, windows: ['02:00-03:00'] })], overrides: [], counts: new Map(), now, timezone: 'Europe/Berlin' });
  t.same(inside.campaigns[0]!.windows, [], 'a window inside the gap does not exist that day');
  t.match(inside.campaigns[0], { planned: 0, onTrack: false });
});

t.test('Europe/Berlin fall back 2024-10-27: 25 h whole-day window, window across the repeated hour', async (t) => {
  const ber = new Zone('Europe/Berlin');
  const day = '2024-10-27';
  const now = ber.localToEpoch(day, 0);
  const whole = plan({ campaigns: [campaign({ id: 'w', timesPerDay: 25 })], overrides: [], counts: new Map(), now, timezone: 'Europe/Berlin' });
  t.equal(whole.dayEnd - whole.dayStart, 25 * 3_600_000);
  t.equal(whole.slots.length, 25);
  for (let i = 0; i < 25; i++) t.equal(whole.slots[i]!.at, whole.dayStart + (i + 0.5) * 3_600_000);
  const rep = plan({ campaigns: [campaign({ id: 'r', timesPerDay: 4, windows: ['01:00-04:00'] })], overrides: [], counts: new Map(), now, timezone: 'Europe/Berlin' });
  t.equal(rep.campaigns[0]!.windows[0]!.end - rep.campaigns[0]!.windows[0]!.start, 4 * 3_600_000, '01:00-04:00 lasts 4 h that day');
  t.same(rep.slots.map((s) => ber.formatLocal(s.at).slice(11, 19) + ber.formatLocal(s.at).slice(23)), ['01:30:00+02:00', '02:30:00+02:00', '02:30:00+01:00', '03:30:00+01:00']);
  const text = renderPlanText(rep, 'Europe/Berlin');
  t.match(text, /02:30:00\(\+01:00\)/, 'the repeated local time names its offset');
});

t.test('same inputs give the same instants (screens of one intersection stay in sync)', async (t) => {
  const ids = ['a', 'b', 'c'];
  const mk = (): Campaign[] => ids.map((id, i) => campaign({ id, timesPerDay: 7 + i, windows: ['06:30-08:30', '16:30-19:00'], priority: i % 2 }));
  const counts = new Map([['a', 3], ['b', 3], ['c', 4]]);
  const p1 = plan({ campaigns: mk(), overrides: [], counts, now: local('10:00:00'), timezone: HCM });
  const p2 = plan({ campaigns: mk().reverse(), overrides: [], counts: new Map(counts), now: local('10:00:00'), timezone: HCM, zone: new Zone(HCM) });
  t.same(p2.slots, p1.slots);
  // Screens whose clocks differ by a few seconds but share the counts plan the same instants.
  const p3 = plan({ campaigns: mk(), overrides: [], counts, now: local('10:00:07'), timezone: HCM });
  t.same(p3.slots, p1.slots);
});

t.test('durations: learned length, then media.durationMs, then 30 s', async (t) => {
  const c = campaign({ id: 'd', timesPerDay: 100, windows: ['08:00-08:10'], media: { url: 'file:///d.mp4', sha256: 'b'.repeat(64) } });
  const dflt = plan({ campaigns: [c], overrides: [], counts: new Map(), now: local('07:00'), timezone: HCM });
  t.equal(dflt.slots.length, 20, '600 s / 30 s');
  t.equal(dflt.slots[0]!.durationMs, 30_000);
  const learned = plan({ campaigns: [c], overrides: [], counts: new Map(), now: local('07:00'), timezone: HCM, durations: new Map([['d', 60_000]]) });
  t.equal(learned.slots.length, 10);
  t.equal(learned.slots[0]!.durationMs, 60_000);
});

t.test('target 0 and no window time: listed, nothing planned', async (t) => {
  const p = plan({ campaigns: [campaign({ id: 'zero', timesPerDay: 0 })], overrides: [], counts: new Map(), now: local('07:00'), timezone: HCM });
  t.match(p.campaigns, [{ campaignId: 'zero', target: 0, planned: 0, onTrack: true }]);
  t.same(p.slots, []);
  const over = run({ now: local('19:30') });
  t.same(over.slots, []);
  t.match(over.campaigns[0], { played: 0, planned: 0, onTrack: false });
  const met = run({ now: local('08:00'), counts: new Map([['ihanoi-2024', 10]]) });
  t.same(met.slots, []);
  t.match(met.campaigns[0], { onTrack: true });
});

t.test('renderPlanText: numbers, slot times, a timeline within 100 columns', async (t) => {
  const p = plan({ campaigns: [directive(), campaign({ id: 'house-promo', timesPerDay: 5, priority: 1 })], overrides: [], counts: new Map(), now: local('00:00'), timezone: HCM });
  const text = renderPlanText(p, HCM);
  t.match(text, /ihanoi-2024 {2}target 10 {2}played 0 {2}planned 10 {2}on track/);
  t.match(text, /06:30:00-08:30:00 16:30:00-19:00:00/);
  t.match(text, /06:43:30 07:10:30 07:37:30 08:04:30 16:31:30/);
  t.match(text, /00:00:00-24:00:00/);
  t.match(text, /^ +00 01 02 03/m);
  t.match(text, /^ihanoi-2024 \.+-\*/m);
  for (const line of text.split('\n')) t.ok(line.length <= 100, `fits: ${line.length}`);
  const narrow = renderPlanText(p, HCM, 60);
  t.match(narrow, /one column = 30 min/);
  const short = renderPlanText(run({ now: local('19:30') }), HCM);
  t.match(short, /SHORT by 10/);
  const none = renderPlanText(plan({ campaigns: [], overrides: [], counts: new Map(), now: local('00:00'), timezone: HCM }), HCM);
  t.match(none, /loop plays all day/);
});

t.test('a catch-up spread fed back by the engine stays put across re-plans', async (t) => {
  // Back at 09:00 after an outage: 10 plays over the 150 evening minutes, every 15 min.
  const first = run({ campaigns: [directive()], now: local('09:00:00') });
  const c = first.campaigns[0]!;
  t.ok(c.catchUp, 'behind: the plan names its catch-up spread');
  t.same(times(first).slice(0, 3), ['16:37:30', '16:52:30', '17:07:30']);
  // The first catch-up play done (16:37:30-16:38:00); re-plan with and without the spread fed back.
  const catchUps = new Map([[c.campaignId, c.catchUp!]]);
  const now = local('16:38:00');
  const counts = new Map([['ihanoi-2024', 1]]);
  const kept = run({ campaigns: [directive()], now, counts, catchUps });
  t.same(times(kept).slice(0, 3), ['16:52:30', '17:07:30', '17:22:30'], 'same spread: every 15 min');
  t.same(kept.campaigns[0]!.catchUp, c.catchUp, 'the same spread is carried on');
  const fresh = run({ campaigns: [directive()], now, counts });
  t.not(times(fresh)[0], '16:52:30', 'without it a new spread starts from now (the bunching the engine avoids)');
  // A spread not kept up (fewer plays than its passed instants) is replaced by a new one.
  const lagging = run({ campaigns: [directive()], now: local('17:30:00'), counts, catchUps });
  t.not(lagging.campaigns[0]!.catchUp?.from, c.catchUp!.from, 'a new spread from 17:30');
  t.equal(lagging.campaigns[0]!.catchUp?.done, 1);
});

t.test('blocked time (an alert, display standby) is cut out of the windows; the target is spread over the rest', async (t) => {
  const blocked = [
    { start: local('17:00'), end: local('17:30') },
    { start: local('07:00'), end: local('08:00') },
  ];
  const p = run({ now: local('00:00'), blocked });
  t.same(times(p), ['06:39:00', '06:57:00', '08:15:00', '16:33:00', '16:51:00', '17:39:00', '17:57:00', '18:15:00', '18:33:00', '18:51:00']);
  t.same(p.campaigns[0]!.windows, [
    { start: local('06:30'), end: local('07:00') },
    { start: local('08:00'), end: local('08:30') },
    { start: local('16:30'), end: local('17:00') },
    { start: local('17:30'), end: local('19:00') },
  ]);
  t.equal(p.campaigns[0]!.onTrack, true);
  // A block over a whole window and past the day's end leaves nothing there; empty blocks cut nothing.
  const q = run({ now: local('00:00'), blocked: [{ start: local('06:00'), end: local('09:00') }, { start: local('16:30'), end: local('16:30') }, { start: local('18:00'), end: local('23:59') }] });
  t.same(q.campaigns[0]!.windows, [{ start: local('16:30'), end: local('18:00') }]);
  t.equal(q.slots.length, 10);
  t.ok(q.slots.every((s) => s.at >= local('16:30') && s.at + s.durationMs <= local('18:00')));
});
