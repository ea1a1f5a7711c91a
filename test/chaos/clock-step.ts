import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { PlayMsg } from '../helpers/e2e.js';
import { tempDir, type Teardown } from '../helpers/tmp.js';
import { assignment, chaosAgent, chaosClips, gridOf, morningZone, Report, sleep, sql, startStage, waitUntil, windowOf, type Outcome } from './stage.js';

// Issue 14, "Time": the wall clock stepped ±1 h while a spot plays (NTP on a Pi without RTC).
// The agent runs under libfaketime with a file-controlled offset (FAKETIME_TIMESTAMP_FILE, no
// cache), monotonic time left alone (a real step does not move CLOCK_MONOTONIC either), so the
// running process, and its mpv, see the wall clock jump by exactly one hour.

export const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';
const HOUR = 3600_000;

export interface ClockStepOpts {
  /** Steps to run, each on its own agent and store. */
  steps: Array<'+1h' | '-1h'>;
  /** Length of each of the two windows (s). */
  windowSec: number;
  /** Grid spacing over the two windows glued (s). */
  spacingSec: number;
}

function libfaketime(): string | undefined {
  for (const f of [LIBFAKETIME, '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/faketime/libfaketime.so.1']) if (existsSync(f)) return f;
  return undefined;
}

function setOffset(file: string, spec: string): void {
  // Renamed into place: libfaketime re-reads the file on every clock call and must never see it half written.
  writeFileSync(`${file}.tmp`, `${spec}\n`);
  renameSync(`${file}.tmp`, file);
}

export async function clockStep(t: Teardown, o: ClockStepOpts): Promise<Outcome[]> {
  const out: Outcome[] = [];
  for (const step of o.steps) out.push(await oneStep(t, step, o));
  return out;
}

async function oneStep(t: Teardown, step: '+1h' | '-1h', o: ClockStepOpts): Promise<Outcome> {
  const r = new Report(`clock step ${step} mid-spot`);
  const lib = libfaketime();
  if (!lib) {
    r.check('libfaketime present', false, 'libfaketime.so.1 not found (apt-get install -y faketime)');
    return r.outcome();
  }
  const dir = tempDir(t, 'chaos-clock-');
  const { broker, noc } = await startStage(t);
  const clips = await chaosClips(dir);
  const zone = morningZone();
  const id = step === '+1h' ? 'chaos-fwd' : 'chaos-back';
  const L = o.windowSec * 1000;
  const n = Math.round((2 * o.windowSec) / o.spacingSec);
  // Real time S is where the step happens. Forward: the agent starts on true time in window
  // `early` and is stepped into `late` (the same instant one hour on). Backward: the agent starts an
  // hour ahead, in `late`, and is stepped back into `early`.
  const S = Math.ceil((Date.now() + 10_000) / 1000) * 1000;
  const early: [number, number] = [S, S + L];
  const late: [number, number] = [S + HOUR, S + HOUR + L];
  const grid = gridOf([early, late], n);
  await noc.publish(`signage/device/${id}/assignment`, assignment(1, clips, { timesPerDay: n, windows: [windowOf(early[0], o.windowSec, zone.offsetMs), windowOf(late[0], o.windowSec, zone.offsetMs)] }), true);

  const offsetFile = path.join(dir, 'faketime');
  setOffset(offsetFile, step === '+1h' ? '+0' : '+1h');
  const dataDir = path.join(dir, 'data');
  const agent = chaosAgent(t, dir, id, broker, {
    dataDir,
    timezone: zone.timezone,
    mpvLog: path.join(dir, 'mpv.log'),
    env: { LD_PRELOAD: lib, FAKETIME_TIMESTAMP_FILE: offsetFile, FAKETIME_NO_CACHE: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1' },
  });
  agent.start();
  const spotPath = path.join(dataDir, 'media', `${clips.spot.sha256}.mp4`);
  const onScreen = (): Array<{ at: number }> => agent.tail?.playing(spotPath) ?? [];

  // Step during the k-th spot on screen (forward: on the grid, 2nd; backward: the catch-up over `late`, 3rd).
  const k = step === '+1h' ? 2 : 3;
  const sawKth = await waitUntil('k-th spot on screen', () => onScreen().length >= k || !agent.alive(), S + L - Date.now());
  if (!sawKth || !agent.alive()) {
    r.fig('on screen', `${onScreen().length} spots before the step`);
    r.check(`spot ${k} on screen before the step`, false, agent.alive() ? 'not seen within the window' : `agent exited: ${agent.exitInfo()}`);
    return r.outcome();
  }
  const kthAt = onScreen()[k - 1]!.at;
  await sleep(Math.max(0, kthAt + 800 - Date.now()));
  setOffset(offsetFile, step === '+1h' ? '+1h' : '+0');
  const stepAt = Date.now();
  const beforeStep = onScreen().length;

  // Run to the end of the window reached by the step (real time S + L either way), then let the last play arrive.
  await waitUntil('window end', () => !agent.alive(), S + L + 3000 - Date.now());
  await sleep(2000);
  const alive = agent.alive();
  await agent.stop();
  const plays = noc.plays(id);
  const rows = await sql<{ outcome: string; duration_ms: number; in_window: number }>(path.join(dataDir, 'agent.db'), 'SELECT outcome, duration_ms, in_window FROM plays ORDER BY id');
  const index = (() => {
    try {
      return (JSON.parse(readFileSync(path.join(dataDir, 'media', 'index.json'), 'utf8')) as { files: Record<string, { durationMs?: number }> }).files[clips.spot.sha256]?.durationMs;
    } catch {
      return undefined;
    }
  })();
  const hb = noc.of(id, 'heartbeat').map((m) => m.json as { compliance?: Array<{ played: number; target: number; onTrack: boolean }> });
  const lastCompliance = [...hb].reverse().find((h) => (h.compliance ?? []).length > 0)?.compliance?.[0];
  const completedIn = (p: PlayMsg): boolean => p.outcome === 'completed' && p.inWindow;
  const played = plays.filter(completedIn).length;

  r.fig('windows', `two of ${o.windowSec} s, one hour apart; target ${n} (grid every ${o.spacingSec} s)`);
  r.fig('on screen', `${onScreen().length} spots (${beforeStep} before the step, ${onScreen().length - beforeStep} after)`);
  r.fig('recorded', Array.isArray(rows) ? `${rows.length} rows: ${rows.map((x) => `${x.outcome}/${x.duration_ms}ms`).join(' ')}` : rows.error);
  r.fig('delivered', `${plays.length} play events, ${played} completed in window; durationMs ${plays.map((p) => p.durationMs).join(',')}`);
  r.fig('learned length', index === undefined ? 'none' : `${index} ms (clip ${clips.spot.ms} ms)`);
  r.fig('clock-jump events', noc.events(id, 'clock-jump').length);
  r.fig('last compliance', lastCompliance ? `${lastCompliance.played}/${lastCompliance.target} onTrack ${lastCompliance.onTrack}` : 'none');

  r.check('agent kept running', alive, alive ? 'alive at the end' : `exited: ${agent.exitInfo()}`);
  const maxMs = clips.spot.ms + 1000;
  const badDur = plays.filter((p) => !(p.durationMs >= 0 && p.durationMs <= maxMs));
  r.check(`every durationMs in [0, ${maxMs}]`, badDur.length === 0 && plays.length > 0, badDur.length ? `out of range: ${badDur.map((p) => `seq ${p.seq} ${p.durationMs}`).join(', ')}` : `${plays.length} plays in range`);
  const backwards = plays.filter((p) => Date.parse(p.endedAt) < Date.parse(p.startedAt));
  r.check('no endedAt before its startedAt', backwards.length === 0, backwards.length ? backwards.map((p) => `seq ${p.seq} ${p.startedAt} → ${p.endedAt}`).join(', ') : 'none');
  r.check('clock-jump event delivered', noc.events(id, 'clock-jump').length > 0, `${noc.events(id, 'clock-jump').length}`);

  if (step === '+1h') {
    // After the step the agent is in `late` with the rest of the day's plays ahead of it: all fit.
    r.check('day target met where the windows allow', played >= n, `${played}/${n} completed in window`);
  } else {
    // Back in `early`: it is ahead of the grid now, so it keeps the grid from index `done`; every
    // grid instant of `early` from a few seconds after the step is within reach (`late` is an hour away).
    const done = plays.filter((p) => completedIn(p) && Date.parse(p.startedAt) >= S + HOUR / 2).length;
    const reachable = grid.filter((g, i) => i >= done && g > stepAt + 3000 && g + clips.spot.ms <= early[1]);
    const after = plays.filter((p) => completedIn(p) && Date.parse(p.startedAt) < S + HOUR / 2 && Date.parse(p.startedAt) >= stepAt - 1000);
    r.fig('reachable after the step', `${reachable.length} grid instants of the early window (done ${done} before it)`);
    r.check(
      'plays due in the windows reached after the step are played (no burst)',
      after.length >= reachable.length && after.length <= reachable.length + 1,
      `${after.length} played, ${reachable.length} due`,
    );
  }
  return r.outcome();
}
