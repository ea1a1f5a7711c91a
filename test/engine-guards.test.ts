import t from 'tap';
import { ClockJumpDetector, FailureRests } from '../agent/engine/guards.js';

t.test('clock jumps: wall time stepping against monotonic time', async (t) => {
  const d = new ClockJumpDetector();
  t.equal(d.observe(1_000_000, 0), undefined, 'first observation is the reference');
  t.equal(d.observe(1_030_000, 30_000), undefined, 'both moved 30 s');
  t.equal(d.observe(1_061_500, 60_000), undefined, 'drift under 2 s is not a jump');
  t.same(d.observe(4_661_500, 61_000), { expected: 1_062_500, deltaMs: 3_599_000 }, 'NTP stepped an hour forward');
  t.same(d.observe(4_600_000, 62_000), { expected: 4_662_500, deltaMs: -62_500 }, 'and back');
});

t.test('failure rests: 30 s doubling to 15 min, reset by a completed play', async (t) => {
  const r = new FailureRests();
  t.equal(r.restingUntil('c', 0), undefined);
  r.failed('c', 0);
  t.equal(r.restingUntil('c', 1), 30_000);
  t.equal(r.restingUntil('c', 30_000), undefined, 'rest over');
  r.failed('c', 30_000);
  t.equal(r.restingUntil('c', 30_000), 90_000, 'second failure: 60 s');
  for (let i = 0; i < 10; i++) r.failed('c', 100_000);
  t.equal(r.restingUntil('c', 100_000), 100_000 + 15 * 60_000, 'capped at 15 min');
  t.equal(r.restingUntil('other', 100_000), undefined, 'per campaign');
  r.completed('c');
  r.failed('c', 200_000);
  t.equal(r.restingUntil('c', 200_000), 230_000, 'a completed play resets the backoff');
});
