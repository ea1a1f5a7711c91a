import t from 'tap';
import { backoffDelay } from '../agent/link/connect-options.js';

t.test('reconnect backoff: exponential from min, capped at max, jittered within [cap/2, cap]', async (t) => {
  const lo = (): number => 0;
  const hi = (): number => 1;
  t.same([1, 2, 3, 4, 5, 6, 7, 8].map((f) => backoffDelay(f, 1000, 60_000, hi)), [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]);
  t.same([1, 2, 3].map((f) => backoffDelay(f, 1000, 60_000, lo)), [500, 1000, 2000], 'half of the cap is fixed');
  t.equal(backoffDelay(1e6, 1000, 60_000, hi), 60_000, 'no overflow after a long outage');
  t.equal(backoffDelay(0, 1000, 60_000, hi), 1000, 'the first retry waits about min');
  const samples = Array.from({ length: 200 }, () => backoffDelay(4, 1000, 60_000));
  t.ok(samples.every((d) => d >= 4000 && d <= 8000), 'within bounds');
  t.ok(new Set(samples).size > 50, 'spread out (a fleet does not reconnect in lockstep)');
});
