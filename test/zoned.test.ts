import t from 'tap';
import { addDays, dayBounds, formatLocal, isoWeekday, localDateOf, localToEpoch, Zone } from '../agent/schedule/zoned.js';

const H = 3_600_000;

t.test('calendar helpers', async (t) => {
  t.equal(isoWeekday('2024-08-15'), 4, 'Thursday');
  t.equal(isoWeekday('2024-08-18'), 7, 'Sunday is 7');
  t.equal(isoWeekday('2024-08-19'), 1, 'Monday is 1');
  t.equal(addDays('2024-02-28', 1), '2024-02-29');
  t.equal(addDays('2024-02-28', 2), '2024-03-01');
  t.equal(addDays('2024-12-31', 1), '2025-01-01');
  t.equal(addDays('2024-01-01', -1), '2023-12-31');
  t.throws(() => isoWeekday('2024-8-15'));
});

t.test('Asia/Ho_Chi_Minh: fixed +07:00', async (t) => {
  const tz = 'Asia/Ho_Chi_Minh';
  const at = localToEpoch('2024-08-15', 6 * 3600 + 36 * 60, tz);
  t.equal(at, Date.parse('2024-08-15T06:36:00+07:00'));
  t.equal(formatLocal(at, tz), '2024-08-15T06:36:00.000+07:00');
  t.equal(localDateOf(Date.parse('2024-08-14T17:00:00Z'), tz), '2024-08-15', 'midnight local is 17:00Z the day before');
  t.equal(localDateOf(Date.parse('2024-08-14T16:59:59.999Z'), tz), '2024-08-14');
  t.same(dayBounds('2024-08-15', tz), { start: Date.parse('2024-08-15T00:00:00+07:00'), end: Date.parse('2024-08-16T00:00:00+07:00') });
  t.equal(localToEpoch('2024-08-15', 86_400, tz), Date.parse('2024-08-16T00:00:00+07:00'), '86400 is the next midnight');
});

t.test('round trips local time -> instant -> local time across zones and the year', async (t) => {
  for (const tz of ['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata', 'Australia/Lord_Howe', 'Pacific/Chatham', 'America/St_Johns']) {
    const z = new Zone(tz);
    for (const date of ['2024-01-15', '2024-03-31', '2024-04-07', '2024-07-01', '2024-10-06', '2024-10-27', '2024-11-03']) {
      for (const sec of [0, 3600 + 61, 12 * 3600 + 30 * 60, 23 * 3600 + 59 * 60 + 59]) {
        const at = z.localToEpoch(date, sec);
        const s = z.formatLocal(at);
        // A wall time inside a gap does not round-trip (by design); all others must.
        const want = `${date}T${new Date(sec * 1000).toISOString().slice(11, 19)}`;
        if (s.slice(0, 19) !== want) {
          t.ok(z.offsetAt(at) !== z.offsetAt(at - 1), `${tz} ${want} is in a gap and maps to the transition (${s})`);
        } else t.equal(z.localDateOf(at), date);
      }
    }
  }
});

t.test('Europe/Berlin spring forward 2024-03-31: 23 h day, gap maps to its end', async (t) => {
  const tz = 'Europe/Berlin';
  const z = new Zone(tz);
  const b = z.dayBounds('2024-03-31');
  t.equal(b.start, Date.parse('2024-03-31T00:00:00+01:00'));
  t.equal(b.end, Date.parse('2024-04-01T00:00:00+02:00'));
  t.equal(b.end - b.start, 23 * H);
  const gapEnd = Date.parse('2024-03-31T01:00:00Z'); // 03:00 CEST
  t.equal(z.localToEpoch('2024-03-31', 2 * 3600), gapEnd, '02:00 does not exist -> 03:00 CEST');
  t.equal(z.localToEpoch('2024-03-31', 2 * 3600 + 30 * 60), gapEnd, '02:30 does not exist -> 03:00 CEST');
  t.equal(z.localToEpoch('2024-03-31', 3 * 3600), gapEnd, '03:00 CEST itself');
  t.equal(z.localToEpoch('2024-03-31', 2 * 3600 - 1), gapEnd - 1000, '01:59:59 CET');
  t.equal(formatLocal(gapEnd, tz), '2024-03-31T03:00:00.000+02:00');
  t.equal(formatLocal(gapEnd - 1, tz), '2024-03-31T01:59:59.999+01:00');
});

t.test('Europe/Berlin fall back 2024-10-27: 25 h day, ambiguous maps to first occurrence', async (t) => {
  const z = new Zone('Europe/Berlin');
  const b = z.dayBounds('2024-10-27');
  t.equal(b.end - b.start, 25 * H);
  t.equal(z.localToEpoch('2024-10-27', 2 * 3600 + 30 * 60), Date.parse('2024-10-27T02:30:00+02:00'), 'first 02:30 (CEST)');
  t.equal(z.localToEpoch('2024-10-27', 3 * 3600), Date.parse('2024-10-27T03:00:00+01:00'), '03:00 is after the repeat');
  t.equal(z.formatLocal(Date.parse('2024-10-27T01:30:00Z')), '2024-10-27T02:30:00.000+01:00', 'second 02:30 (CET)');
  t.equal(z.localDateOf(Date.parse('2024-10-27T01:30:00Z')), '2024-10-27');
  t.equal(z.formatTime(Date.parse('2024-10-27T01:30:00Z')), '02:30:00');
});

t.test('America/New_York and a half-hour zone', async (t) => {
  const ny = new Zone('America/New_York');
  t.equal(ny.dayBounds('2024-03-10').end - ny.dayBounds('2024-03-10').start, 23 * H);
  t.equal(ny.localToEpoch('2024-03-10', 2.5 * 3600), Date.parse('2024-03-10T03:00:00-04:00'));
  t.equal(ny.dayBounds('2024-11-03').end - ny.dayBounds('2024-11-03').start, 25 * H);
  t.equal(ny.formatLocal(Date.parse('2024-01-01T05:00:00Z')), '2024-01-01T00:00:00.000-05:00');
  const lh = new Zone('Australia/Lord_Howe'); // 30-minute DST shift
  const d = lh.dayBounds('2024-10-06');
  t.equal(d.end - d.start, 23.5 * H);
  t.equal(new Zone('Asia/Kathmandu').formatLocal(Date.parse('2024-01-01T00:00:00Z')), '2024-01-01T05:45:00.000+05:45');
});

t.test('unknown zone throws', async (t) => {
  t.throws(() => new Zone('Mars/Olympus_Mons'), RangeError);
});
