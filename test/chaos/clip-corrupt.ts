import { closeSync, existsSync, openSync, readFileSync, readSync, renameSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { sha256File } from '../helpers/agent-proc.js';
import { tempDir, type Teardown } from '../helpers/tmp.js';
import { assignment, chaosAgent, chaosClips, morningZone, Report, sleep, startStage, waitUntil, windowOf, type Outcome } from './stage.js';

// Issue 14, "Media on the card is checked again": while the agent is stopped, bytes of its cached
// spot are flipped in place (same size, same name: what a failing SD card does), and the source
// is taken away so no good copy can be fetched again. Restarted, the agent must never put that
// file on screen nor report a play under the hash it no longer has.

export interface ClipCorruptOpts {
  /** How long the restarted agent is watched (s); several grid slots of the campaign fall in it. */
  watchSec: number;
}

/** Flips `count` bytes from the middle of the file (the mp4's media data), in place. */
function flipBytes(file: string, count: number): void {
  const size = statSync(file).size;
  const start = Math.floor(size / 3);
  const fd = openSync(file, 'r+');
  try {
    const buf = Buffer.alloc(Math.min(count, size - start));
    readSync(fd, buf, 0, buf.length, start);
    for (let i = 0; i < buf.length; i++) buf[i] = buf[i]! ^ 0xff;
    writeSync(fd, buf, 0, buf.length, start);
  } finally {
    closeSync(fd);
  }
}

export async function clipCorrupt(t: Teardown, o: ClipCorruptOpts): Promise<Outcome> {
  const r = new Report('cached clip corrupted on the card');
  const dir = tempDir(t, 'chaos-clip-');
  const { broker, noc } = await startStage(t);
  const clips = await chaosClips(dir);
  const zone = morningZone();
  const id = 'chaos-clip';
  const spacingSec = 5;
  const windowSec = 1800;
  const S = Math.ceil((Date.now() + 8000) / 1000) * 1000;
  await noc.publish(`signage/device/${id}/assignment`, assignment(1, clips, { timesPerDay: windowSec / spacingSec, windows: [windowOf(S, windowSec, zone.offsetMs)] }), true);
  const dataDir = path.join(dir, 'data');
  const cached = path.join(dataDir, 'media', `${clips.spot.sha256}.mp4`);

  const a1 = chaosAgent(t, dir, id, broker, { dataDir, timezone: zone.timezone, mpvLog: path.join(dir, 'mpv-1.log') });
  a1.start();
  const firstOk = await waitUntil('a completed play', () => !a1.alive() || noc.plays(id).some((p) => p.outcome === 'completed'), 40_000);
  await a1.stop();
  if (!firstOk || !existsSync(cached)) {
    r.check('the spot played once from its cached copy', false, `no completed play or no ${path.basename(cached)}: ${a1.exitInfo()}`);
    return r.outcome();
  }

  const size = statSync(cached).size;
  flipBytes(cached, Math.max(4096, Math.floor(size / 4)));
  const badSha = sha256File(cached);
  renameSync(clips.spot.file, `${clips.spot.file}.gone`);
  const playsBefore = noc.plays(id).length;
  const eventsBefore = noc.events(id).length;

  const a2 = chaosAgent(t, dir, id, broker, { dataDir, timezone: zone.timezone, mpvLog: path.join(dir, 'mpv-2.log') });
  const restartAt = Date.now();
  a2.start();
  // Several slots of a campaign every 5 s fall in the watch; a `media-failed` event may come at any point of it.
  await sleep(o.watchSec * 1000);
  const alive = a2.alive();
  const shownBad = a2.tail?.playing(cached) ?? [];
  const loopShown = (a2.tail?.playing() ?? []).filter((s) => s.file.includes(clips.loop.sha256)).length;
  await a2.stop();
  const mpvLog = (() => {
    try {
      return readFileSync(path.join(dir, 'mpv-2.log'), 'utf8');
    } catch {
      return '';
    }
  })();
  const decodeErrors = mpvLog.split('\n').filter((l) => /\]\[[ew]\]\[ffmpeg\/video\]/.test(l)).length;
  const after = noc.plays(id).slice(playsBefore);
  const reportedUnderSha = after.filter((p) => p.mediaSha256 === clips.spot.sha256 && p.outcome !== 'failed');
  const events = noc.events(id).slice(eventsBefore);
  const mediaFailed = events.filter((e) => e.type === 'media-failed' && JSON.stringify(e.detail).includes(clips.spot.sha256));

  r.fig('damage', `${path.basename(cached)}: bytes flipped in place, size ${size} kept, sha256 now ${badSha.slice(0, 12)}…; source removed`);
  r.fig('on screen', `corrupted spot ${shownBad.length}× in ${o.watchSec} s after the restart; loop clips ${loopShown}×; mpv decode errors ${decodeErrors}`);
  r.fig('delivered', `${after.length} play events after the restart (${after.map((p) => `${p.outcome}:${p.mediaSha256.slice(0, 8)}`).join(' ') || '-'})`);
  r.fig('events', events.map((e) => e.type).join(',') || 'none');
  r.fig('restart', `watched from ${new Date(restartAt).toISOString()}`);

  r.check('agent kept running', alive, alive ? 'alive' : `exited: ${a2.exitInfo()}`);
  r.check('the corrupted clip is never played', shownBad.length === 0, `${shownBad.length} showings of the corrupted file`);
  r.check('no play reported under the hash the file no longer has', reportedUnderSha.length === 0, `${reportedUnderSha.length} play events with sha256 ${clips.spot.sha256.slice(0, 12)}…`);
  r.check('a media-failed event names the clip', mediaFailed.length > 0, `${mediaFailed.length} media-failed events for it`);
  return r.outcome();
}
