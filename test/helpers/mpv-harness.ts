import path from 'node:path';
import { SystemClock } from '../../agent/core/clock.js';
import { silentLogger } from '../../agent/core/log.js';
import type { Outcome } from '../../agent/core/types.js';
import { MpvPlayer, type MpvPlayerContext, type PlaybackTrace } from '../../agent/player/mpv-player.js';
import type { Clip } from '../../agent/core/clip.js';
import type { SpotHandlers } from '../../agent/player/player.js';
import { fakeSha, HEADLESS, tempDir } from './clips.js';

export interface SpotRecord {
  startedAt?: number;
  endedAt?: number;
  outcome?: Outcome;
  detail?: string;
  endedCalls: number;
  ended: Promise<void>;
  handlers: SpotHandlers;
}

export function spotRecord(): SpotRecord {
  let done!: () => void;
  const r: SpotRecord = {
    endedCalls: 0,
    ended: new Promise<void>((res) => (done = res)),
    handlers: {
      onStarted: (at) => void (r.startedAt = at),
      onEnded: (at, outcome, detail) => {
        r.endedCalls++;
        r.endedAt = at;
        r.outcome = outcome;
        if (detail !== undefined) r.detail = detail;
        done();
      },
    },
  };
  return r;
}

export function clip(p: string): Clip {
  return { path: p, sha256: fakeSha(p) };
}

export interface Harness {
  player: MpvPlayer;
  traces: PlaybackTrace[];
  restarts: string[];
  suspects: Record<string, unknown>[];
  dir: string;
}

/** A headless MpvPlayer in the test's own temp dir, stopped at teardown. */
export function harness(t: { teardown(fn: () => unknown): void }, over: Partial<MpvPlayerContext> = {}): Harness {
  const dir = tempDir(t);
  const h: Harness = { traces: [], restarts: [], suspects: [], dir } as unknown as Harness;
  h.player = new MpvPlayer({
    mpvPath: 'mpv',
    args: HEADLESS,
    log: silentLogger(),
    clock: new SystemClock(),
    screenshotDir: path.join(dir, 'shots'),
    evidence: false,
    events: { onRestarted: (r) => h.restarts.push(r), onOutputSuspect: (d) => h.suspects.push(d) },
    trace: (e) => h.traces.push(e),
    ...over,
  });
  t.teardown(() => h.player.stop());
  return h;
}
