import { VirtualClock, flushJobs } from '../../agent/core/clock.js';
import { silentLogger } from '../../agent/core/log.js';
import type { Assignment, Campaign, Override } from '../../agent/core/types.js';
import { Engine, type EngineContext } from '../../agent/engine/engine.js';
import { EventRecorder } from '../../agent/events/recorder.js';
import { SimulatedPlayer } from '../../agent/player/simulated.js';
import { effectiveState, type EffectiveState } from '../../agent/schedule/desired.js';
import { SqliteStore } from '../../agent/store/sqlite-store.js';
import type { Teardown } from './tmp.js';

export const assignmentOf = (campaigns: Campaign[], version = 1): Assignment => ({ version, campaigns });

export interface EngineRig {
  clock: VirtualClock;
  store: SqliteStore;
  player: SimulatedPlayer;
  engine: Engine;
  state: { desired: EffectiveState };
  /** Learned clip lengths by sha256 (what the media index keeps). */
  learned: Map<string, number>;
  settle: () => Promise<void>;
  /** Puts an override in force (or clears it with null) and re-plans, as the agent does. */
  setOverride: (o: Override | null) => Promise<void>;
  /** A power cut: engine and player gone without a word, the store closed. */
  crash: () => Promise<void>;
}

export interface EngineRigOptions {
  clock?: VirtualClock;
  /** The length the simulated player really plays when the clip does not say (default 30 s). */
  playerLengthMs?: number;
  /**
   * The clip's length as resolve gives it: the assignment's durationMs or 30 s (default), the
   * assignment's only (`declared`, as the media cache gives it), or none (`none`: the player
   * plays playerLengthMs, whatever the assignment says).
   */
  clipLength?: 'declared' | 'default30' | 'none';
  learned?: Map<string, number>;
  fail?: (campaignId: string) => boolean;
  engine?: Partial<EngineContext>;
}

/** An Engine on a VirtualClock with a SimulatedPlayer and a real SqliteStore file. */
export async function engineRig(t: Teardown, file: string, at: number, campaigns: Campaign[], o: EngineRigOptions = {}): Promise<EngineRig> {
  const clock = o.clock ?? new VirtualClock(at);
  const store = new SqliteStore({ file, log: silentLogger() });
  await store.start();
  const doc = assignmentOf(campaigns);
  const state = { desired: effectiveState({ assignments: [{ source: 'device', version: 1, doc, appliedAt: at }], overrides: [] }, []) };
  const learned = o.learned ?? new Map<string, number>();
  const player = new SimulatedPlayer({
    clock,
    ...(o.playerLengthMs !== undefined ? { defaultDurationMs: o.playerLengthMs } : {}),
    ...(o.fail ? { fail: (r) => o.fail!(r.campaignId) } : {}),
  });
  const engine = new Engine({
    clock,
    store,
    player,
    log: silentLogger(),
    deviceId: 'dev',
    timezone: 'Asia/Ho_Chi_Minh',
    desired: () => state.desired,
    resolve: (m) =>
      o.clipLength === 'none'
        ? { path: m.url, sha256: m.sha256 }
        : o.clipLength === 'declared'
        ? { path: m.url, sha256: m.sha256, ...(m.durationMs !== undefined ? { durationMs: m.durationMs } : {}) }
        : { path: m.url, sha256: m.sha256, durationMs: m.durationMs ?? 30_000 },
    durationOf: (sha) => learned.get(sha),
    learnDuration: (sha, ms) => learned.set(sha, ms),
    events: new EventRecorder({ store, clock, log: silentLogger() }),
    ...o.engine,
  });
  await player.start();
  await engine.start();
  const settle = async (): Promise<void> => {
    await flushJobs();
    await engine.whenIdle();
  };
  await settle();
  await clock.advanceTo(at, settle);
  let stopped = false;
  const crash = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await engine.stop();
    player.kill();
    await settle();
    await store.stop();
  };
  const setOverride = async (ov: Override | null): Promise<void> => {
    state.desired = effectiveState(
      { assignments: [{ source: 'device', version: 1, doc, appliedAt: at }], overrides: ov ? [{ source: 'device', version: ov.version, doc: ov, appliedAt: clock.now() }] : [] },
      [],
    );
    engine.replan('override');
    await settle();
  };
  t.teardown(async () => {
    if (stopped) return;
    await engine.stop();
    await store.stop().catch(() => undefined);
  });
  return { clock, store, player, engine, state, learned, settle, setOverride, crash };
}
