import { spawn } from 'node:child_process';
import { MPV_MEDIA_SAFETY_ARGS } from '../core/media-formats.js';

export interface ProbeOpts {
  mpvPath: string;
  /** The probe is killed after this long (a wedged demuxer must not hold a download slot). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

const MARK = 'SIGNAGE-PROBE';

/**
 * The media's length in ms as mpv sees it, from a short-lived headless mpv; undefined when mpv
 * cannot tell (a still image, an unrecognised file, a timeout, no mpv).
 *
 * mpv is the one demuxer the box surely has (ffprobe is not installed with it on Pi OS).
 * `--term-playing-msg` is expanded at the first playback restart, so one frame must be shown:
 * `--frames=1` with `--untimed` shows it without waiting, and `--image-display-duration=0`
 * keeps a still from being held for a second (its `duration` is then empty: no length).
 * The message goes to the `term-msg` log module, hence the msg-level. Opening an audio output
 * (even the null one) costs ~400 ms, so the audio track is skipped first; only a file that then
 * has nothing to play (audio only, or unrecognised) is probed again with audio.
 */
export async function probeDuration(file: string, o: ProbeOpts): Promise<number | undefined> {
  const deadline = Date.now() + (o.timeoutMs ?? 10_000);
  const first = await runProbe(file, o, deadline, ['--aid=no']);
  if (first.marked || o.signal?.aborted || Date.now() >= deadline) return first.ms;
  return (await runProbe(file, o, deadline, [])).ms;
}

function runProbe(file: string, o: ProbeOpts, deadline: number, extra: string[]): Promise<{ ms: number | undefined; marked: boolean }> {
  return new Promise((resolve) => {
    if (o.signal?.aborted) return resolve({ ms: undefined, marked: false });
    const args = [
      '--no-config', '--load-scripts=no', '--ytdl=no', '--osc=no', '--input-terminal=no',
      '--vo=null', '--ao=null', '--hwdec=no', '--untimed', '--frames=1', '--image-display-duration=0',
      '--idle=no', '--msg-level=all=no,term-msg=info', ...MPV_MEDIA_SAFETY_ARGS, ...extra,
      `--term-playing-msg=${MARK} \${=duration} \${=current-tracks/video/image}`,
      '--', file,
    ];
    let out = '';
    let done = false;
    const child = spawn(o.mpvPath, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    const finish = (marked: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      resolve({ ms: marked ? parseProbe(out) : undefined, marked });
    };
    const kill = (): void => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    const onAbort = (): void => {
      kill();
      finish(false);
    };
    // Real time on purpose: it bounds a real process, whatever clock the cache runs on.
    const timer = setTimeout(onAbort, Math.max(0, deadline - Date.now()));
    o.signal?.addEventListener('abort', onAbort);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (s: string) => {
      if (out.length < 4096) out += s;
    });
    child.on('error', () => finish(false));
    child.on('close', () => finish(out.includes(MARK)));
  });
}

/** `SIGNAGE-PROBE 7.320000 no` → 7320; an image, an empty or zero duration → undefined. */
export function parseProbe(out: string): number | undefined {
  const m = new RegExp(`^${MARK} (\\S*) ?(\\S*)$`, 'm').exec(out);
  if (!m || m[2] === 'yes') return undefined;
  const s = Number(m[1]);
  return m[1] !== '' && Number.isFinite(s) && s > 0 ? Math.round(s * 1000) : undefined;
}
