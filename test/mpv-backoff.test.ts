import t from 'tap';
import { VirtualClock } from '../agent/core/clock.js';
import { silentLogger } from '../agent/core/log.js';
import type { MpvIpc } from '../agent/player/mpv-ipc.js';
import { MpvSupervisor } from '../agent/player/mpv-supervisor.js';

// Backoff arithmetic over virtual time; the real-mpv restarts are in mpv-supervision.test.ts.
t.test('restart backoff doubles from 0.5 s to a 30 s cap and resets after 60 s up', async (t) => {
  const clock = new VirtualClock(0);
  let up = false;
  let failNext = 0;
  const attempts: number[] = [];
  const restarted: string[] = [];
  const live = { command: () => new Promise(() => {}) } as unknown as MpvIpc;
  const sup = new MpvSupervisor({
    clock,
    log: silentLogger(),
    timings: { stallMs: 2000, pingIntervalMs: 1e9, pingTimeoutMs: 1500, backoffMinMs: 500, backoffMaxMs: 30_000, healthyResetMs: 60_000 },
    mpv: {
      live: () => (up ? live : undefined),
      playheadMovedAt: () => undefined,
      takeDown: async () => void (up = false),
      bringUp: async () => {
        attempts.push(clock.now());
        if (failNext > 0) {
          failNext--;
          throw new Error('no display');
        }
        up = true;
        sup.markUp();
      },
      onRestarted: (r) => restarted.push(r),
    },
  });
  up = true;
  sup.markUp();
  sup.start();
  t.teardown(() => sup.stop());
  failNext = 8;
  sup.fail('crash');
  await clock.advanceBy(200_000);
  const gaps = attempts.map((a, i) => a - (i ? attempts[i - 1]! : 0));
  t.same(gaps, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000], 'doubling, capped');
  t.equal(restarted.length, 1, 'onRestarted once, when it finally came up');
  t.match(restarted[0], /restart failed: no display/);
  attempts.length = 0;
  await clock.advanceBy(61_000);
  const t0 = clock.now();
  sup.fail('crash after a healthy minute');
  await clock.advanceBy(1000);
  t.same(attempts.map((a) => a - t0), [500], 'backoff reset to the first step');
});

t.test('a frozen playhead or an unanswered probe triggers a restart', async (t) => {
  const clock = new VirtualClock(0);
  const reasons: string[] = [];
  let up = true;
  let moved: number | undefined = 0;
  let answers = true;
  const ipc = {
    command: () => (answers ? Promise.resolve(1) : Promise.reject(new Error('no answer in 1500 ms'))),
  } as unknown as MpvIpc;
  const sup = new MpvSupervisor({
    clock,
    log: silentLogger(),
    timings: { stallMs: 2000, pingIntervalMs: 2000, pingTimeoutMs: 1500, backoffMinMs: 500, backoffMaxMs: 30_000, healthyResetMs: 60_000 },
    mpv: {
      live: () => (up ? ipc : undefined),
      playheadMovedAt: () => moved,
      takeDown: async (r) => void ((up = false), reasons.push(r)),
      bringUp: async () => void ((up = true), (moved = clock.monotonic()), sup.markUp()),
      onRestarted: () => {},
    },
  });
  sup.start();
  t.teardown(() => sup.stop());
  await clock.advanceBy(5000);
  t.match(reasons, [/stalled/], 'playhead frozen since 0');
  moved = undefined; // idle: nothing should move
  answers = false;
  await clock.advanceBy(5000);
  t.match(reasons, [/stalled/, /not answering/]);
});
