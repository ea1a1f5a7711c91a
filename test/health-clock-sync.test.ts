import t from 'tap';
import { silentLogger } from '../agent/core/log.js';
import { ClockSync } from '../agent/health/clock-sync.js';

t.test('yes / no / garbage from timedatectl', async (t) => {
  const answers = ['yes\n', 'no\n', 'maybe\n'];
  const expected = [['synced', true], ['unsynced', false], ['unknown', false]] as const;
  for (const [i, out] of answers.entries()) {
    const seen: string[][] = [];
    const cs = new ClockSync({ log: silentLogger(), runCommand: async (cmd, args) => (seen.push([cmd, ...args]), out) });
    t.equal(cs.lastKnown(), false, 'unknown before the first check');
    t.equal(await cs.synced(), expected[i]![1]);
    t.equal(cs.lastState(), expected[i]![0]);
    t.equal(cs.lastKnown(), expected[i]![1]);
    t.same(seen, [['timedatectl', 'show', '-p', 'NTPSynchronized', '--value']]);
  }
});

t.test('missing binary counts as not synchronised', async (t) => {
  const cs = new ClockSync({
    log: silentLogger(),
    runCommand: () => Promise.reject(Object.assign(new Error('spawn timedatectl ENOENT'), { code: 'ENOENT' })),
  });
  t.equal(await cs.synced(), false);
  t.equal(cs.lastState(), 'unknown');
});

t.test('cached within the TTL, concurrent callers share one run, re-checked after it', async (t) => {
  let runs = 0;
  let answer = 'no';
  const cs = new ClockSync({ log: silentLogger(), ttlMs: 50, runCommand: async () => (runs++, answer) });
  t.same(await Promise.all([cs.synced(), cs.synced(), cs.synced()]), [false, false, false]);
  t.equal(runs, 1);
  answer = 'yes';
  t.equal(await cs.synced(), false, 'cached answer');
  t.equal(runs, 1);
  await new Promise((r) => setTimeout(r, 60));
  t.equal(await cs.synced(), true, 'fresh answer after the TTL');
  t.equal(runs, 2);
});

t.test('the real timedatectl (when present) gives a boolean', async (t) => {
  const cs = new ClockSync({ log: silentLogger() });
  const v = await cs.synced();
  t.type(v, 'boolean');
  t.ok(['synced', 'unsynced', 'unknown'].includes(cs.lastState()));
});
