import { execFile, execFileSync } from 'node:child_process';
import { createReadStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { sha256Of } from '../../agent/media/index-file.js';
import { probeDuration } from '../../agent/media/probe.js';

const run = promisify(execFile);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function timed(n: number, fn: () => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  return out;
}

/** Worst event-loop delay (beyond a 5 ms interval) while `fn` runs. */
async function maxLag(fn: () => Promise<unknown>): Promise<number> {
  let worst = 0;
  let last = performance.now();
  const iv = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last - 5);
    last = now;
  }, 5);
  await fn();
  clearInterval(iv);
  return worst;
}

/**
 * Media cache (issues 8 and 14): the cost of probing a verified file's length with a headless
 * mpv, against launching mpv at all (`mpv --version`); and re-hashing a cached file, against
 * reading it without hashing, with the worst event-loop delay while it runs.
 */
export async function bench(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-media-'));
  try {
    const ff = (args: string[]): void => void execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args]);
    const small = path.join(dir, 'small.mp4');
    ff(['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25', '-t', '10', '-pix_fmt', 'yuv420p', '-c:v', 'libx264', '-preset', 'ultrafast', small]);
    const hd = path.join(dir, 'hd-av.mp4');
    ff(['-f', 'lavfi', '-i', 'testsrc2=size=1920x1080:rate=30', '-f', 'lavfi', '-i', 'sine', '-t', '30', '-pix_fmt', 'yuv420p', '-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac', hd]);
    const still = path.join(dir, 'still.png');
    ff(['-f', 'lavfi', '-i', 'testsrc2=size=1920x1080', '-frames:v', '1', still]);
    const audio = path.join(dir, 'jingle.mp3');
    ff(['-f', 'lavfi', '-i', 'sine=d=5', audio]);

    const base = median(await timed(9, () => run('mpv', ['--version'])));
    console.log(`mpv --version (baseline: launching mpv)           median ${base.toFixed(0)} ms`);
    for (const [label, file] of [['10 s 320x240 h264', small], ['30 s 1080p h264 + aac', hd], ['1080p png still', still], ['5 s mp3 (audio only)', audio]] as const) {
      let got: number | undefined;
      const ms = median(await timed(9, async () => (got = await probeDuration(file, { mpvPath: 'mpv' }))));
      console.log(`probe ${label.padEnd(24)} → ${String(got ?? 'no length').padStart(9)}   median ${ms.toFixed(0)} ms (${(ms / base).toFixed(1)}× baseline)`);
    }

    const big = hd;
    const mb = statSync(big).size / 1e6;
    const read = median(await timed(5, async () => {
      for await (const _ of createReadStream(big, { highWaterMark: 256 * 1024 })) void _;
    }));
    const hash = median(await timed(5, () => sha256Of(big)));
    const lag = await maxLag(() => sha256Of(big));
    console.log(`read ${mb.toFixed(0)} MB, no hash (baseline, page cache)        ${(mb / (read / 1000)).toFixed(0)} MB/s`);
    console.log(`re-hash ${mb.toFixed(0)} MB (sha256Of, page cache)            ${(mb / (hash / 1000)).toFixed(0)} MB/s, worst event-loop delay ${lag.toFixed(1)} ms`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
