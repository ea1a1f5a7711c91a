import { execFile } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { tempDir, type Teardown } from '../helpers/tmp.js';
import { assignment, at, chaosAgent, chaosClips, gridOf, morningZone, Report, sleep, sql, startStage, waitUntil, windowOf, type Outcome } from './stage.js';

// Issue 14, "A store that cannot write": dataDir on a small filesystem of its own (an 8 MiB
// tmpfs, mounted as root), filled to the last byte while spots play, held full, then freed.
// A real ENOSPC on every write, as an SD card gives; RLIMIT_FSIZE (prlimit --fsize) is not the
// same thing (it kills with SIGXFSZ and ignores what the disk holds), so it is not used.

const run = promisify(execFile);

export interface DiskFullOpts {
  /** How long the disk stays full (s). */
  holdSec: number;
  /** Grid spacing (s). */
  spacingSec: number;
}

/** Fills the filesystem holding `file` to its last byte; returns the bytes written. */
function fill(file: string): number {
  const fd = openSync(file, 'w');
  let total = 0;
  try {
    for (const size of [1 << 20, 1 << 16, 4096, 512, 1]) {
      const buf = Buffer.alloc(size, 0x5a);
      for (;;) {
        try {
          total += writeSync(fd, buf);
        } catch {
          break;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return total;
}

async function mountSmall(t: Teardown): Promise<{ dir: string } | { error: string }> {
  // Outside the scenario's temp dir: that one is removed recursively, which must never walk into a mount.
  const dir = mkdtempSync(path.join(tmpdir(), 'chaos-mnt-'));
  try {
    await run('mount', ['-t', 'tmpfs', '-o', 'size=8m,mode=0755', 'tmpfs', dir], { timeout: 10_000 });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    return { error: String((e as { stderr?: string }).stderr || (e as Error).message).trim() };
  }
  t.teardown(async () => {
    // Lazy: detaches at once even if a killed agent's files are still open.
    await run('umount', ['-l', dir], { timeout: 10_000 }).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir };
}

export async function diskFull(t: Teardown, o: DiskFullOpts): Promise<Outcome> {
  const r = new Report(`disk full for ${o.holdSec} s while playing`);
  const mnt = await mountSmall(t);
  if ('error' in mnt) {
    r.check('a small filesystem for dataDir (tmpfs, as root)', false, `cannot mount: ${mnt.error}`);
    return r.outcome();
  }
  const dir = tempDir(t, 'chaos-disk-');
  const { broker, noc } = await startStage(t);
  const clips = await chaosClips(dir);
  const zone = morningZone();
  const id = 'chaos-disk';
  const fillAfterMs = 12_000;
  const windowSec = Math.ceil((fillAfterMs / 1000 + o.holdSec + 15) / o.spacingSec) * o.spacingSec;
  const n = windowSec / o.spacingSec;
  const S = Math.ceil((Date.now() + 10_000) / 1000) * 1000;
  const grid = gridOf([[S, S + windowSec * 1000]], n);
  await noc.publish(`signage/device/${id}/assignment`, assignment(1, clips, { timesPerDay: n, windows: [windowOf(S, windowSec, zone.offsetMs)] }), true);
  const dataDir = path.join(mnt.dir, 'data');
  const agent = chaosAgent(t, dir, id, broker, { dataDir, timezone: zone.timezone, mpvLog: path.join(dir, 'mpv.log') });
  agent.start();
  const spotPath = path.join(dataDir, 'media', `${clips.spot.sha256}.mp4`);
  const onScreen = (): Array<{ at: number }> => agent.tail?.playing(spotPath) ?? [];

  await sleep(Math.max(0, S + fillAfterMs - Date.now()));
  const filler = path.join(mnt.dir, 'filler');
  const filled = fill(filler);
  const fillAt = Date.now();
  const { stdout: dfFull } = await run('df', ['-k', mnt.dir]);
  // An assignment arriving while the disk is full (same campaign, next version): it cannot be
  // stored then, and must still be in force once space returns (re-applied, not acknowledged and lost).
  await sleep(Math.min(3000, (o.holdSec * 1000) / 3));
  await noc.publish(`signage/device/${id}/assignment`, assignment(2, clips, { timesPerDay: n, windows: [windowOf(S, windowSec, zone.offsetMs)] }), true);
  await sleep(Math.max(0, fillAt + o.holdSec * 1000 - Date.now()));
  unlinkSync(filler);
  const releaseAt = Date.now();

  await waitUntil('window end', () => !agent.alive(), S + windowSec * 1000 + 3000 - Date.now());
  const plays = () => noc.plays(id);
  const appliedV2 = (): boolean => noc.events(id, 'applied').some((e) => (e.detail as { version?: number } | null)?.version === 2);
  await waitUntil('every spot on screen delivered', () => plays().length >= onScreen().length, 20_000);
  await waitUntil('version 2 applied', () => appliedV2(), 10_000);
  const alive = agent.alive();
  const hbs = noc.of(id, 'heartbeat').map((m) => ({ at: m.at, ...(m.json as { diskFreeMB?: number; store?: unknown }) }));
  const during = hbs.filter((h) => h.at >= fillAt && h.at <= releaseAt);
  const rows = await sql<{ outcome: string; n: number }>(path.join(dataDir, 'agent.db'), 'SELECT outcome, COUNT(*) AS n FROM plays GROUP BY outcome');
  const shown = onScreen();
  // One interval for both counts: a spot shown up to 1 s after the release may be one due then.
  const shownDuring = shown.filter((s) => s.at >= fillAt && s.at <= releaseAt + 1000).length;
  const dueDuring = grid.filter((g) => g >= fillAt - 2000 && g <= releaseAt + 1000).length;
  const ps = plays();
  const seqs = ps.map((p) => p.seq).sort((a, b) => a - b);
  const gapless = seqs.every((s, i) => s === i + 1);
  const completed = ps.filter((p) => p.outcome === 'completed' && p.inWindow).length;
  await agent.stop();

  r.fig('window', `${windowSec} s, target ${n} (every ${o.spacingSec} s); disk filled at ${at(fillAt, S)} (${filled} bytes), freed at ${at(releaseAt, S)}`);
  r.fig('df when full', dfFull.trim().split('\n').pop() ?? '');
  r.fig('on screen', `${shown.length} spots (${shownDuring} while full, ${dueDuring} due then): ${shown.map((s) => at(s.at, S)).join(' ')}`);
  r.fig('recorded', Array.isArray(rows) ? rows.map((x) => `${x.outcome ?? 'open'} ${x.n}`).join(', ') || 'no rows' : rows.error);
  r.fig('delivered', `${ps.length} play events (${completed} completed in window), seq ${seqs.join(',')}`);
  r.fig('heartbeats while full', `${during.length}; diskFreeMB ${[...new Set(during.map((h) => h.diskFreeMB))].join('/')}; store ${[...new Set(during.map((h) => JSON.stringify(h.store ?? null)))].join(' ')}`);
  r.fig('events', noc.events(id).map((e) => e.type).join(',') || 'none');

  r.check('agent kept running', alive, alive ? 'alive' : `exited: ${agent.exitInfo()}`);
  r.check('no more spots on screen than were due while the disk was full', shownDuring <= dueDuring, `${shownDuring} shown, ${dueDuring} due`);
  r.check('no more spots on screen than the day’s target over the window', shown.length <= n, `${shown.length} shown, target ${n}`);
  r.check('none lost once space returns: every spot on screen delivered', shown.length > 0 && ps.length >= shown.length, `${ps.length} delivered of ${shown.length} shown`);
  r.check('an assignment that arrived while full is applied once space returns', appliedV2(), appliedV2() ? 'applied event for version 2' : 'no applied event for version 2');
  r.check('seq gapless', gapless && seqs.length > 0, seqs.join(',') || 'no plays');
  return r.outcome();
}
