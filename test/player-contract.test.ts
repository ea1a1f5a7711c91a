import { writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { VirtualClock } from '../agent/core/clock.js';
import { SimulatedPlayer } from '../agent/player/simulated.js';
import { fakeSha, makeClip, tempDir } from './helpers/clips.js';
import { harness } from './helpers/mpv-harness.js';
import { playerContract, type ContractSubject } from './helpers/player-contract.js';
import { waitFor } from './helpers/wait.js';

// One suite of Player behaviours, two players: real headless mpv on ffmpeg clips in real time,
// and the simulator on a virtual clock. A difference is a bug in the simulator.

const SIZES = ['160x120', '176x144', '192x144'];

playerContract(t, 'MpvPlayer', async (t) => {
  const h = harness(t);
  const dir = tempDir(t);
  return {
    player: h.player,
    restarts: h.restarts,
    clip: async (seconds, variant) => {
      const p = await makeClip({ kind: 'pattern', seconds, size: SIZES[variant % SIZES.length]! });
      return { path: p, sha256: fakeSha(p), durationMs: seconds * 1000 };
    },
    brokenClip: async () => {
      const p = path.join(dir, 'broken.mp4');
      writeFileSync(p, 'this is not a video\n'.repeat(100));
      return { path: p, sha256: fakeSha(p) };
    },
    now: () => Date.now(),
    until: (what, cond, boundMs = 20_000) => waitFor(what, cond, boundMs),
  } satisfies ContractSubject;
});

playerContract(t, 'SimulatedPlayer', async (t) => {
  const clock = new VirtualClock(Date.parse('2026-03-02T08:00:00Z'));
  const restarts: string[] = [];
  const broken = '/sim/broken.mp4';
  // 40 ms from playSpot to the first frame: about what the bench measures for mpv (loadfile -> playback-restart).
  const player = new SimulatedPlayer({ clock, startLatencyMs: 40, fail: (r) => r.clip.path === broken, events: { onRestarted: (r) => restarts.push(r) } });
  t.teardown(() => player.stop());
  return {
    player,
    restarts,
    clip: async (seconds, variant) => ({ path: `/sim/clip-${seconds}s-${SIZES[variant % SIZES.length]}.mp4`, sha256: fakeSha(`${seconds}/${variant}`), durationMs: seconds * 1000 }),
    brokenClip: async () => ({ path: broken, sha256: fakeSha(broken) }),
    now: () => clock.now(),
    until: async (what, cond, boundMs = 20_000) => {
      const end = clock.monotonic() + boundMs;
      while (!cond()) {
        if (clock.monotonic() > end) throw new Error(`virtual ${boundMs} ms passed waiting for: ${what}`);
        await clock.advanceBy(50);
      }
    },
  } satisfies ContractSubject;
});
