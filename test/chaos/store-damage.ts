import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, statSync, truncateSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { PlayMsg } from '../helpers/e2e.js';
import { tempDir, type Teardown } from '../helpers/tmp.js';
import { assignment, chaosAgent, chaosClips, eventIdWellFormed, morningZone, Report, startStage, waitUntil, windowOf, type ChaosAgent, type Outcome } from './stage.js';

// Issue 14, "A store that cannot open": the agent is stopped, its agent.db damaged (truncated,
// garbage, zeroed header) or deleted, and started again on the same dataDir (media cache intact,
// the assignment retained on the broker). The screen must come back and keep playing, and no
// eventId may ever repeat (PROTOCOL v1.1 §8: `{id}:{storeId}:{seq}`, a new store has a new storeId).

type Damage = 'truncated' | 'garbage' | 'zeroed header' | 'deleted';

export interface StoreDamageOpts {
  damages: Damage[];
  /** Completed plays to wait for after each start (bounded). */
  playsPerRun: number;
}

function damage(db: string, how: Damage): string {
  const size = existsSync(db) ? statSync(db).size : 0;
  switch (how) {
    case 'truncated':
      truncateSync(db, Math.floor(size / 2));
      return `${size} → ${Math.floor(size / 2)} bytes`;
    case 'garbage':
      writeFileSync(db, randomBytes(size));
      return `${size} random bytes`;
    case 'zeroed header': {
      const fd = openSync(db, 'r+');
      writeSync(fd, Buffer.alloc(100), 0, 100, 0);
      closeSync(fd);
      return 'first 100 bytes zeroed';
    }
    case 'deleted':
      for (const f of [db, `${db}-wal`, `${db}-shm`]) if (existsSync(f)) unlinkSync(f);
      return 'agent.db, -wal, -shm removed';
  }
}

export async function storeDamage(t: Teardown, o: StoreDamageOpts): Promise<Outcome> {
  const r = new Report('store damaged or deleted while stopped');
  const dir = tempDir(t, 'chaos-store-');
  const { broker, noc } = await startStage(t);
  const clips = await chaosClips(dir);
  const zone = morningZone();
  const id = 'chaos-store';
  const windowSec = 1800;
  const S = Math.ceil((Date.now() + 8000) / 1000) * 1000;
  await noc.publish(`signage/device/${id}/assignment`, assignment(1, clips, { timesPerDay: windowSec / 5, windows: [windowOf(S, windowSec, zone.offsetMs)] }), true);
  const dataDir = path.join(dir, 'data');
  const db = path.join(dataDir, 'agent.db');
  const spotPath = path.join(dataDir, 'media', `${clips.spot.sha256}.mp4`);

  const runs: Array<{ damage: string; agent: ChaosAgent; playsBefore: number; eventsBefore: number }> = [];
  const startRun = async (label: string, n: number, expectReplaced: boolean): Promise<ChaosAgent> => {
    const agent = chaosAgent(t, dir, id, broker, { dataDir, timezone: zone.timezone, mpvLog: path.join(dir, `mpv-${runs.length}.log`) });
    const playsBefore = noc.plays(id).length;
    const eventsBefore = noc.events(id).length;
    runs.push({ damage: label, agent, playsBefore, eventsBefore });
    agent.start();
    await waitUntil(
      `${n} completed plays after the start`,
      () =>
        !agent.alive() ||
        (noc.plays(id).slice(playsBefore).filter((p) => p.outcome === 'completed').length >= n &&
          (!expectReplaced || noc.events(id).slice(eventsBefore).some((e) => e.type === 'store-replaced'))),
      30_000,
    );
    return agent;
  };

  const first = await startRun('none (first start)', o.playsPerRun, false);
  await first.stop();
  for (const how of o.damages) {
    const what = existsSync(db) ? damage(db, how) : 'no store file to damage';
    const a = await startRun(`${how}: ${what}`, o.playsPerRun, how !== 'deleted');
    await a.stop();
  }

  const all = noc.plays(id);
  const ids = all.map((p) => p.eventId);
  const dup = ids.filter((x, i) => ids.indexOf(x) !== i);
  r.fig('runs', runs.length);
  for (const [i, run] of runs.entries()) {
    const plays = all.slice(run.playsBefore, runs[i + 1]?.playsBefore ?? all.length) as Array<PlayMsg & { storeId?: string }>;
    const shown = run.agent.tail?.playing(spotPath).length ?? 0;
    const events = noc.events(id).slice(run.eventsBefore, runs[i + 1]?.eventsBefore).map((e) => e.type);
    const exited = run.agent.proc.lines.find((l) => typeof l.msg === 'string' && /SQLITE_|not a database|malformed/.test(JSON.stringify(l)));
    r.fig(`run ${i} damage`, run.damage);
    r.fig(`run ${i} figures`, `on screen ${shown} spots; delivered ${plays.length} plays (eventIds ${plays.map((p) => p.eventId).join(' ') || '-'}); events ${events.join(',') || '-'}${exited ? `; store error: ${JSON.stringify(exited).slice(0, 160)}` : ''}`);
    if (i === 0) continue;
    r.check(`${run.damage.split(':')[0]}: the screen comes back and plays`, shown > 0 && plays.some((p) => p.outcome === 'completed'), `${shown} spots on screen, ${plays.filter((p) => p.outcome === 'completed').length} completed plays delivered`);
    if (!run.damage.startsWith('deleted')) {
      r.check(`${run.damage.split(':')[0]}: a store-replaced event says so`, events.includes('store-replaced'), events.join(',') || 'no events');
    }
  }
  r.fig('dataDir now', listDir(dataDir));
  r.check('no eventId ever reused', dup.length === 0 && ids.length > 0, dup.length ? `reused: ${[...new Set(dup)].join(' ')}` : `${ids.length} distinct`);
  const bad = all.filter((p) => !eventIdWellFormed(p));
  r.check('eventId is {id}:{storeId}:{seq} (PROTOCOL v1.1 §8)', bad.length === 0 && all.length > 0, bad.length ? `e.g. ${bad[0]!.eventId} (storeId ${JSON.stringify((bad[0] as { storeId?: unknown }).storeId)})` : 'all');
  return r.outcome();
}

/** Names in dataDir: what the agent left beside agent.db (a store moved aside shows up here). */
function listDir(d: string): string {
  try {
    return readdirSync(d).sort().join(' ');
  } catch {
    return '-';
  }
}
