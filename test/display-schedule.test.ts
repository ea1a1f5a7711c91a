import t from 'tap';
import { assignmentSchema } from '../agent/protocol/schemas.js';
import { displayScheduleSchema, type DisplaySchedule } from '../agent/protocol/display-schema.js';
import { brightnessAt, brightnessPeriods, offSpans, onSpans, powerAt } from '../agent/display/schedule.js';
import { plan } from '../agent/schedule/planner.js';
import { Zone } from '../agent/schedule/zoned.js';

const HCM = new Zone('Asia/Ho_Chi_Minh');
const at = (s: string): number => Date.parse(s);
const spans = (xs: { start: number; end: number }[]): string[] => xs.map((x) => `${new Date(x.start).toISOString()}/${new Date(x.end).toISOString()}`);

t.test('schema: the §11 example parses; bad times and ranges are refused; unknown keys are ignored', async (t) => {
  const ex = { power: [{ on: '06:00', off: '23:30' }], brightness: [{ from: '18:30', pct: 60 }, { from: '22:00', pct: 35 }], futureKnob: 1 };
  const r = displayScheduleSchema.safeParse(ex);
  t.ok(r.success);
  t.same(r.data, { power: [{ on: '06:00', off: '23:30' }], brightness: [{ from: '18:30', pct: 60 }, { from: '22:00', pct: 35 }] });
  for (const bad of [
    { power: [{ on: '6:00', off: '23:30' }] },
    { power: [{ on: '06:00', off: '24:00' }] },
    { power: [{ on: '06:00', off: '06:00' }] },
    { power: [] },
    { brightness: [{ from: '18:30', pct: 101 }] },
    { brightness: [{ from: '18:30', pct: -1 }] },
    { brightness: [{ from: '18:30', pct: 50 }, { from: '18:30', pct: 40 }] },
    { weekdays: [0] },
  ]) t.notOk(displayScheduleSchema.safeParse(bad).success, JSON.stringify(bad));
  const a = assignmentSchema.safeParse({ version: 1, campaigns: [], display: ex });
  t.ok(a.success, 'an assignment carries it');
  t.same(a.data?.display?.power, [{ on: '06:00', off: '23:30' }]);
  t.ok(assignmentSchema.safeParse({ version: 1, campaigns: [] }).success, 'and may omit it');
});

t.test('power: a day window, on and off instants, next change', async (t) => {
  const s: DisplaySchedule = { power: [{ on: '06:00', off: '23:30' }] };
  t.same(spans(onSpans(s, HCM, '2024-08-15')), ['2024-08-14T23:00:00.000Z/2024-08-15T16:30:00.000Z']);
  t.same(spans(offSpans(s, HCM, '2024-08-15')), ['2024-08-14T17:00:00.000Z/2024-08-14T23:00:00.000Z', '2024-08-15T16:30:00.000Z/2024-08-15T17:00:00.000Z']);
  t.same(powerAt(s, HCM, at('2024-08-15T05:59:59+07:00')), { on: false, until: at('2024-08-15T06:00:00+07:00') });
  t.same(powerAt(s, HCM, at('2024-08-15T06:00:00+07:00')), { on: true, until: at('2024-08-15T23:30:00+07:00') });
  t.same(powerAt(s, HCM, at('2024-08-15T23:45:00+07:00')), { on: false, until: at('2024-08-16T06:00:00+07:00') });
  t.same(powerAt(undefined, HCM, at('2024-08-15T03:00:00+07:00')), { on: true, until: undefined }, 'no schedule: always on');
  t.same(offSpans({ brightness: [{ from: '22:00', pct: 35 }] }, HCM, '2024-08-15'), [], 'no power key: never off');
});

t.test('power: overnight window on 06:00 off 01:00 stays on across midnight', async (t) => {
  const s: DisplaySchedule = { power: [{ on: '06:00', off: '01:00' }] };
  t.same(spans(onSpans(s, HCM, '2024-08-15')), ['2024-08-14T17:00:00.000Z/2024-08-14T18:00:00.000Z', '2024-08-14T23:00:00.000Z/2024-08-15T17:00:00.000Z']);
  t.same(powerAt(s, HCM, at('2024-08-15T23:59:00+07:00')), { on: true, until: at('2024-08-16T01:00:00+07:00') }, 'one span across midnight');
  t.same(powerAt(s, HCM, at('2024-08-16T00:30:00+07:00')), { on: true, until: at('2024-08-16T01:00:00+07:00') });
  t.same(powerAt(s, HCM, at('2024-08-16T01:00:00+07:00')), { on: false, until: at('2024-08-16T06:00:00+07:00') });
});

t.test('power: weekdays open the windows on those days only; an overnight window belongs to the day it opens', async (t) => {
  // 2024-08-16 is a Friday (5), 2024-08-17 Saturday, 2024-08-19 Monday.
  const s: DisplaySchedule = { power: [{ on: '06:00', off: '01:00' }], weekdays: [1, 2, 3, 4, 5] };
  t.same(spans(onSpans(s, HCM, '2024-08-17')), ['2024-08-16T17:00:00.000Z/2024-08-16T18:00:00.000Z'], 'Saturday: only the tail of Friday night');
  t.same(onSpans(s, HCM, '2024-08-18'), [], 'Sunday: standby all day');
  t.same(powerAt(s, HCM, at('2024-08-17T02:00:00+07:00')), { on: false, until: at('2024-08-19T06:00:00+07:00') }, 'next on is Monday 06:00');
});

t.test('power: DST days in Europe/Berlin (spring forward 2024-03-31, fall back 2024-10-27)', async (t) => {
  const ber = new Zone('Europe/Berlin');
  const s: DisplaySchedule = { power: [{ on: '02:30', off: '23:00' }] };
  // 02:30 does not exist on 2024-03-31: the window opens at the first instant after the gap, 03:00 CEST = 01:00Z.
  t.same(spans(onSpans(s, ber, '2024-03-31')), ['2024-03-31T01:00:00.000Z/2024-03-31T21:00:00.000Z']);
  const off = offSpans(s, ber, '2024-03-31');
  t.equal(off.reduce((n, x) => n + x.end - x.start, 0), 3 * 3_600_000, 'a 23 h day: 20 h on, off from 00:00 to the gap (2 real hours) and 23:00-24:00');
  // 2024-10-27: 24:00 comes 25 h after 00:00; the window 06:00-23:00 is 17 wall hours and 17 real hours.
  const on = onSpans({ power: [{ on: '06:00', off: '23:00' }] }, ber, '2024-10-27');
  t.same(spans(on), ['2024-10-27T05:00:00.000Z/2024-10-27T22:00:00.000Z']);
  const overnight = onSpans({ power: [{ on: '22:00', off: '04:00' }] }, ber, '2024-10-27');
  t.same(spans(overnight), ['2024-10-26T22:00:00.000Z/2024-10-27T03:00:00.000Z', '2024-10-27T21:00:00.000Z/2024-10-27T23:00:00.000Z'], 'the night across fall-back is 7 real hours');
});

t.test('brightness: levels by time of day, 100 % before the first, next change', async (t) => {
  const s: DisplaySchedule = { brightness: [{ from: '22:00', pct: 35 }, { from: '18:30', pct: 60 }] };
  const ps = brightnessPeriods(s, HCM, '2024-08-15').map((p) => `${HCM.formatTime(p.start)}-${p.end === HCM.dayBounds('2024-08-15').end ? '24:00:00' : HCM.formatTime(p.end)} ${p.pct}`);
  t.same(ps, ['00:00:00-18:30:00 100', '18:30:00-22:00:00 60', '22:00:00-24:00:00 35']);
  t.same(brightnessAt(s, HCM, at('2024-08-15T12:00:00+07:00')), { pct: 100, until: at('2024-08-15T18:30:00+07:00') });
  t.same(brightnessAt(s, HCM, at('2024-08-15T18:30:00+07:00')), { pct: 60, until: at('2024-08-15T22:00:00+07:00') });
  t.same(brightnessAt(s, HCM, at('2024-08-15T23:00:00+07:00')), { pct: 35, until: at('2024-08-16T00:00:00+07:00') });
  t.same(brightnessAt({ brightness: [{ from: '00:00', pct: 20 }, { from: '06:00', pct: 80 }] }, HCM, at('2024-08-15T03:00:00+07:00')), { pct: 20, until: at('2024-08-15T06:00:00+07:00') });
  t.same(brightnessAt(undefined, HCM, at('2024-08-15T03:00:00+07:00')), { pct: 100, until: undefined });
});

t.test('the planner treats power-off time as outside every window', async (t) => {
  const s: DisplaySchedule = { power: [{ on: '08:00', off: '20:00' }] };
  const day = '2024-08-15';
  const now = HCM.dayBounds(day).start;
  const c = { id: 'c', media: { url: 'file:///m.mp4', sha256: 'a'.repeat(64), durationMs: 10_000 }, timesPerDay: 12 };
  const p = plan({ campaigns: [c], overrides: [], counts: new Map(), now, timezone: HCM.tz, blocked: offSpans(s, HCM, day) });
  t.equal(p.slots.length, 12, 'the whole target still fits');
  for (const sl of p.slots) t.ok(powerAt(s, HCM, sl.at).on && powerAt(s, HCM, sl.at + sl.durationMs - 1).on, `${HCM.formatTime(sl.at)} is inside the power window`);
  t.equal(HCM.formatTime(p.slots[0]!.at), '08:30:00', 'even spread over the 12 h the screen is on: first at half a step');
});

t.test('config: display defaults, the command driver needs its command with {pct}, cecDevice is /dev/cecN', async (t) => {
  const { parseConfig, ConfigError } = await import('../agent/config/config.js');
  const base = { deviceId: 'd-1', mqtt: { url: 'mqtt://127.0.0.1:1' } };
  t.same(parseConfig(base, '/tmp/x.json').display, { brightnessDriver: 'mpv', cec: 'auto' });
  const cmd = parseConfig({ ...base, display: { brightnessDriver: 'command', brightnessCommand: ['/usr/local/bin/sender-bright', '{pct}'], cec: 'off' } }, '/tmp/x.json');
  t.same(cmd.display.brightnessCommand, ['/usr/local/bin/sender-bright', '{pct}']);
  const bad = (display: unknown): string[] => {
    try {
      parseConfig({ ...base, display }, '/tmp/x.json');
      return [];
    } catch (e) {
      return e instanceof ConfigError ? e.problems : [String(e)];
    }
  };
  t.match(bad({ brightnessDriver: 'command' }), [/display\.brightnessCommand: brightnessDriver "command" needs brightnessCommand/]);
  t.match(bad({ brightnessDriver: 'command', brightnessCommand: ['/bin/x', '50'] }), [/needs brightnessCommand, with \{pct\}/]);
  t.match(bad({ cecDevice: '/dev/ttyUSB0' }), [/display\.cecDevice: must be \/dev\/cecN/]);
  t.match(bad({ brightnessDriver: 'novastar' }), [/display\.brightnessDriver/]);
  t.match(bad({ brightnes: 'mpv' }), [/Unrecognized key/], 'a typo is an error, as everywhere in the config');
});
