import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { tempDir as sharedTempDir } from './tmp.js';

const run = promisify(execFile);

export interface ClipSpec {
  kind: 'pattern' | 'black' | 'still' | 'red';
  seconds: number;
  fps?: number;
  size?: string;
}

// Clips are inputs only, so test files share them: one cache directory, each clip written under
// a temporary name and renamed, so parallel test files racing to make the same clip are safe.
export const CLIP_DIR = path.join(os.tmpdir(), 'signage-test-clips');
const cacheDir = CLIP_DIR;

/** An H.264 mp4 made by ffmpeg: `pattern` is testsrc2 (moving every frame), `black` all black, `still` one unmoving grey picture, `red` all red (an alert clip a screenshot tells apart). */
export async function makeClip(spec: ClipSpec): Promise<string> {
  const fps = spec.fps ?? 25;
  const size = spec.size ?? '160x120';
  const name = `${spec.kind}-${spec.seconds}s-${fps}fps-${size}.mp4`;
  const file = path.join(cacheDir, name);
  if (existsSync(file)) return file;
  mkdirSync(cacheDir, { recursive: true });
  const src =
    spec.kind === 'pattern' ? `testsrc2=size=${size}:rate=${fps}` : `color=c=${spec.kind === 'still' ? 'gray' : spec.kind}:size=${size}:rate=${fps}`;
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.mp4`;
  await run('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', src, '-t', String(spec.seconds),
    '-pix_fmt', 'yuv420p', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', String(fps), tmp,
  ]);
  renameSync(tmp, file);
  return file;
}

/** A PNG still made by ffmpeg (mpv shows it, but it has no length of its own). */
export async function makeStill(size = '160x120'): Promise<string> {
  const file = path.join(cacheDir, `still-${size}.png`);
  if (existsSync(file)) return file;
  mkdirSync(cacheDir, { recursive: true });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.png`;
  await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=size=${size}`, '-frames:v', '1', '-f', 'image2', tmp]);
  renameSync(tmp, file);
  return file;
}

/** A file with an .mp4 name and random bytes inside: mpv cannot recognise it. */
export function corruptClip(dir: string): string {
  const file = path.join(dir, 'corrupt.mp4');
  writeFileSync(file, randomBytes(64 * 1024));
  return file;
}

export function tempDir(t: { teardown(fn: () => void): void }, prefix = 'signage-mpv-'): string {
  return sharedTempDir(t, prefix);
}

export function fakeSha(p: string): string {
  return createHash('sha256').update(p).digest('hex');
}

/** Headless args for tests: mpv needs --vo and --ao on a box without a display. */
export const HEADLESS = ['--vo=null', '--ao=null'];
