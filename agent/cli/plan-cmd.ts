import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Config } from '../config/config.js';
import type { Clock } from '../core/clock.js';
import { localDateSchema } from '../protocol/schemas.js';
import { effectiveState, type EffectiveState } from '../schedule/desired.js';
import { plan, type Plan } from '../schedule/planner.js';
import { renderPlanText, type DisplayDay } from '../schedule/timeline.js';
import { brightnessPeriods, offSpans } from '../display/schedule.js';
import { Zone } from '../schedule/zoned.js';
import { SqliteStore } from '../store/sqlite-store.js';
import { readAssignmentFile } from './desired-file.js';
import type { CliIo } from './io.js';
import { storeFileOf } from './paths.js';
import { UsageError } from './usage.js';

/**
 * `plan` without --date: today from now with the plays the store has counted (what the box will
 * do next). With --date D, today included: D from its first instant with nothing played (its
 * ideal plan), as the README says; the store is read only for what is assigned.
 */
export async function planCommand(args: string[], config: Config, io: CliIo & { clock: Clock }): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { config: { type: 'string' }, date: { type: 'string' }, assignment: { type: 'string' }, json: { type: 'boolean' } },
    strict: true,
  });
  if (values.date !== undefined && !localDateSchema.safeParse(values.date).success) throw new UsageError('--date must be a date YYYY-MM-DD');
  const zone = new Zone(config.timezone);
  const realNow = io.clock.now();
  const today = zone.localDateOf(realNow);
  const day = values.date ?? today;
  const live = values.date === undefined;

  let state: EffectiveState;
  let counts = new Map<string, number>();
  const storeFile = storeFileOf(config);
  const store = existsSync(storeFile) ? new SqliteStore({ file: storeFile, log: io.log }) : undefined;
  try {
    await store?.start();
    if (values.assignment) {
      const a = readAssignmentFile(values.assignment);
      state = effectiveState({ assignments: [{ source: 'device', version: a.version, doc: a, appliedAt: realNow }], overrides: [] }, config.groups);
    } else if (store) {
      state = effectiveState(await store.loadDesired(), config.groups);
    } else {
      state = effectiveState({ assignments: [], overrides: [] }, config.groups);
      if (!values.json) io.out(`(no store at ${storeFile} yet and no --assignment: nothing is assigned)`);
    }
    if (store && live) counts = await store.countCompleted(day);
  } finally {
    await store?.stop();
  }
  const now = live ? realNow : zone.dayBounds(day).start;
  // §11: standby time is outside every window, as the engine plans it.
  const display: DisplayDay | undefined = state.display
    ? { standby: offSpans(state.display, zone, day), brightness: brightnessPeriods(state.display, zone, day) }
    : undefined;
  const blocked = display?.standby ?? [];
  const p = plan({ campaigns: state.campaigns, overrides: state.overrides, counts, now, timezone: config.timezone, zone, ...(blocked.length ? { blocked } : {}) });
  io.out(values.json ? JSON.stringify(planJson(p, zone, display), null, 2) : renderPlanText(p, config.timezone, 100, display));
  return 0;
}

export function planJson(p: Plan, zone: Zone, display?: DisplayDay): unknown {
  const t = (at: number): string => zone.formatLocal(at);
  return {
    ...(display
      ? {
          display: {
            standby: display.standby.map((s) => ({ start: t(s.start), end: t(s.end) })),
            brightness: display.brightness.map((b) => ({ start: t(b.start), end: t(b.end), pct: b.pct })),
          },
        }
      : {}),
    day: p.day,
    timezone: zone.tz,
    dayStart: t(p.dayStart),
    dayEnd: t(p.dayEnd),
    replanAt: t(p.replanAt),
    campaigns: p.campaigns.map((c) => ({
      campaignId: c.campaignId,
      target: c.target,
      played: c.played,
      planned: c.planned,
      onTrack: c.onTrack,
      overridden: c.overridden,
      windows: c.windows.map((w) => ({ start: t(w.start), end: t(w.end) })),
      slots: p.slots.filter((s) => s.campaignId === c.campaignId).map((s) => t(s.at)),
    })),
    slots: p.slots.map((s) => ({ campaignId: s.campaignId, at: t(s.at), durationMs: s.durationMs, priority: s.priority })),
  };
}
