// Not in engine/: a run builds the concrete SqliteStore and SimulatedPlayer, which the engine,
// knowing only the Store and Player interfaces, must not import.
import { VirtualClock, flushJobs } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import type { Assignment, Compliance, LocalDate, Outcome } from '../core/types.js';
import { SimulatedPlayer } from '../player/simulated.js';
import { effectiveState, type EffectiveState } from '../schedule/desired.js';
import { addDays, Zone } from '../schedule/zoned.js';
import { SqliteStore } from '../store/sqlite-store.js';
import { Engine } from '../engine/engine.js';
import { offSpans } from '../display/schedule.js';
import type { WindowSpan } from '../schedule/windows.js';
import { EventRecorder } from '../events/recorder.js';
import { AlertController } from '../alerts/controller.js';
import type { DesiredState } from '../core/desired.js';

/** A daily power cut, in local seconds of day; `end <= start` means it runs past midnight. */
export interface Outage {
  start: number;
  end: number;
}

export interface SimulationInput {
  deviceId: string;
  timezone: string;
  groups: string[];
  assignment: Assignment;
  from: LocalDate;
  days: number;
  outages: Outage[];
  /** §10: an alert at these local times on every simulated day (what it costs the day's targets). */
  alerts?: Outage[];
  log: Logger;
  /** Store file; default an in-memory SQLite (simulate never touches the device's store). */
  storeFile?: string;
  /** Test hook: decide a spot's fate. */
  fail?: (campaignId: string) => boolean;
}

export interface SimulationResult {
  compliance: Compliance[];
  plays: Array<{ campaignId: string; day: LocalDate; scheduledAt: number; startedAt: number; outcome: Outcome | null; inWindow: boolean }>;
}

export function parseOutage(s: string): Outage | undefined {
  const m = /^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$/.exec(s);
  if (!m) return undefined;
  const start = Number(m[1]) * 3600 + Number(m[2]) * 60;
  const end = Number(m[3]) * 3600 + Number(m[4]) * 60;
  if (start === end) return undefined;
  return { start, end };
}

/**
 * Runs the real Engine, planner and SQLite store on a virtual clock with a simulated player.
 * A power cut kills engine and player without a word (open plays stay open), and the next
 * boot starts a fresh engine on the same store — exactly the path a Pi takes.
 */
export async function simulate(input: SimulationInput): Promise<SimulationResult> {
  const zone = new Zone(input.timezone);
  const store = new SqliteStore({ file: input.storeFile ?? ':memory:', log: input.log });
  await store.start();
  try {
    const t0 = zone.dayBounds(input.from).start;
    const clock = new VirtualClock(t0);
    const { state } = await store.applyIfNewer('device', { kind: 'assignment', doc: input.assignment }, t0);
    const desired: EffectiveState = effectiveState(state, input.groups);
    const events = new EventRecorder({ store, clock, log: input.log });
    const learned = new Map<string, number>();
    // §11: the assignment's display schedule; standby time is outside every window, as on a box.
    const powerOff = (at: number): WindowSpan[] => offSpans(desired.display, zone, zone.localDateOf(at));

    let engine: Engine | undefined;
    let player: SimulatedPlayer | undefined;
    const alerts = dailyAlerts(input, zone, (reason) => engine?.alertsChanged(reason), clock, events);
    const settle = async (): Promise<void> => {
      await flushJobs();
      await engine?.whenIdle();
      await flushJobs();
    };
    const boot = async (): Promise<void> => {
      player = new SimulatedPlayer({ clock, ...(input.fail ? { fail: (r) => input.fail!(r.campaignId) } : {}) });
      engine = new Engine({
        clock,
        store,
        player,
        log: input.log,
        deviceId: input.deviceId,
        timezone: input.timezone,
        desired: () => desired,
        ...(alerts ? { alerts } : {}),
        resolve: (m) => ({ path: m.url, sha256: m.sha256, durationMs: m.durationMs ?? 30_000 }),
        durationOf: (sha) => learned.get(sha),
        learnDuration: (sha, ms) => learned.set(sha, ms),
        clockSynced: () => true,
        events,
        maxSleepMs: 6 * 3600_000,
        powerOff,
        jumpCheckMs: 0,
      });
      await player.start();
      await engine.start();
      await settle();
    };
    const powerCut = async (): Promise<void> => {
      await engine?.stop();
      player?.kill();
      await settle();
      engine = undefined;
      player = undefined;
    };

    // Every cut and restore instant over the run, in time order.
    const edges: Array<{ at: number; up: boolean }> = [];
    for (let i = 0; i < input.days; i++) {
      const day = addDays(input.from, i);
      for (const o of input.outages) {
        const cut = zone.localToEpoch(day, o.start);
        const restore = o.end > o.start ? zone.localToEpoch(day, o.end) : zone.localToEpoch(addDays(day, 1), o.end);
        edges.push({ at: cut, up: false }, { at: restore, up: true });
      }
    }
    edges.sort((a, b) => a.at - b.at || Number(a.up) - Number(b.up));
    const end = zone.dayBounds(addDays(input.from, input.days)).start;

    alerts?.start();
    await boot();
    let down = 0;
    for (const e of edges) {
      if (e.at < t0 || e.at > end) continue;
      await clock.advanceTo(e.at, settle);
      if (!e.up) {
        if (down++ === 0) await powerCut();
      } else if (--down === 0) {
        await boot();
      }
    }
    await clock.advanceTo(end, settle);
    if (engine) await powerCut();
    alerts?.stop();

    // Judge each day as it ended, from the store alone.
    const judge = new Engine({
      clock,
      store,
      player: new SimulatedPlayer({ clock }),
      log: input.log,
      deviceId: input.deviceId,
      timezone: input.timezone,
      desired: () => desired,
      resolve: () => undefined,
      events,
      powerOff,
    });
    const compliance: Compliance[] = [];
    const plays: SimulationResult['plays'] = [];
    for (let i = 0; i < input.days; i++) {
      const day = addDays(input.from, i);
      compliance.push(...(await judge.compliance(day)));
      for (const p of await store.playsForDay(day)) {
        plays.push({ campaignId: p.campaignId, day: p.day, scheduledAt: p.scheduledAt, startedAt: p.startedAt, outcome: p.outcome, inWindow: p.inWindow });
      }
    }
    return { compliance, plays };
  } finally {
    await store.stop();
  }
}

const SIM_ALERT_MEDIA = { url: 'sim://alert.mp4', sha256: 'a1'.repeat(32) };

/**
 * The real AlertController fed one alert a day at each `--alert` time. Each day's alert sits on a
 * topic of its own (a group per day), as an operator would publish a new one each day; the
 * controller's rules pick the live one exactly as on a screen.
 */
function dailyAlerts(input: SimulationInput, zone: Zone, changed: (reason: string) => void, clock: VirtualClock, events: EventRecorder): AlertController | undefined {
  if (!input.alerts?.length) return undefined;
  const groups: string[] = [];
  const state: DesiredState = { assignments: [], overrides: [], alerts: [] };
  for (let i = 0; i < input.days; i++) {
    const day = addDays(input.from, i);
    for (const [j, a] of input.alerts.entries()) {
      const start = zone.localToEpoch(day, a.start);
      const end = a.end > a.start ? zone.localToEpoch(day, a.end) : zone.localToEpoch(addDays(day, 1), a.end);
      const g = `sim-${i}-${j}`;
      groups.push(g);
      const doc = { version: 1, id: `sim-${day}-${j}`, media: SIM_ALERT_MEDIA, startsAt: new Date(start).toISOString(), expiresAt: new Date(end).toISOString() };
      state.alerts!.push({ source: `group/${g}`, version: 1, doc, appliedAt: start });
    }
  }
  const c = new AlertController({
    clock,
    log: input.log,
    events,
    groups,
    resolveMedia: (m) => ({ path: m.url, sha256: m.sha256, durationMs: 30_000 }),
    onChange: changed,
  });
  c.update(state);
  return c;
}
