import { spawn as nodeSpawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Owner } from './firstboot.js';

// A screen has no one in front of it with a keyboard: the first-boot import tells the
// installer what is wrong on the screen itself. The text is burned into the picture by
// ffmpeg's drawtext (mpv's OSD is drawn by the VO and would not show in --vo=image tests);
// it is read from a file so that no filtergraph escaping of the message is ever needed.

/** What mpv gets on a Pi without a desktop when no config says otherwise (STACK-NOTES). */
export const DEFAULT_CARD_PLAYER_ARGS = ['--vo=gpu', '--gpu-context=drm', '--ao=null'];

const SAFE_PATH_RE = /^[A-Za-z0-9/._-]+$/;

/**
 * The one-shot runs as root (it writes /etc/signage-agent), but mpv is a large parser of
 * untrusted-ish input with a GPU driver under it: it runs as the service user. Through setpriv
 * rather than spawn's uid/gid options, because libuv then drops every supplementary group
 * (setgroups(0)), and mpv needs `video`/`render` for /dev/dri; `--init-groups` keeps the user's own.
 */
export const SETPRIV = 'setpriv';

export type Spawn = (command: string, args: string[], options: { stdio: 'ignore' }) => ChildProcess;

export interface ErrorCard {
  mpvPath: string;
  argv: string[];
  /** Without drawtext (an ffmpeg without fonts): the same text as mpv's OSD message. */
  fallbackArgv: string[];
  textFile: string;
  /** The user mpv runs as (when the one-shot runs as root); undefined: as the caller. */
  runAs?: Owner;
}

/** Writes the card's text and returns the mpv argv that shows it for `seconds`. */
export function errorCard(opts: { lines: string[]; seconds: number; workDir: string; mpvPath?: string; playerArgs?: string[]; runAs?: Owner }): ErrorCard {
  if (!SAFE_PATH_RE.test(opts.workDir)) throw new Error(`error card: unsafe work dir ${opts.workDir}`);
  mkdirSync(opts.workDir, { recursive: true, mode: 0o700 });
  const textFile = path.join(opts.workDir, 'error-card.txt');
  // Long lines would run off a 1280-wide picture; wrap at 70 columns.
  const text = opts.lines.flatMap((l) => wrap(l.replace(/[\u0000-\u0008\u000b-\u001f]/g, ' '), 70)).join('\n');
  writeFileSync(textFile, text + '\n', { mode: 0o600 });
  // mpv reads the text as the service user: its own folder and file, still private to it.
  if (opts.runAs) for (const f of [opts.workDir, textFile]) chownSync(f, opts.runAs.uid, opts.runAs.gid);
  const playerArgs = opts.playerArgs ?? DEFAULT_CARD_PLAYER_ARGS;
  const seconds = Math.max(1, Math.round(opts.seconds));
  const common = [
    '--no-config',
    ...playerArgs,
    ...(playerArgs.some((a) => a.startsWith('--ao=')) ? [] : ['--ao=null']),
    '--really-quiet',
    '--no-input-terminal',
    '--fs',
    `--length=${seconds}`,
  ];
  const color = `av://lavfi:color=c=0x5a0000:s=1280x720:r=5:d=${seconds}`;
  const argv = [...common, `${color},drawtext=textfile=${textFile}:expansion=none:fontcolor=white:fontsize=28:x=40:y=40:line_spacing=12`];
  const fallbackArgv = [...common, '--osd-level=1', `--osd-duration=${seconds * 1000}`, '--osd-font-size=28', '--osd-align-x=left', '--osd-align-y=top', `--osd-msg1=$>${text}`, color];
  return { mpvPath: opts.mpvPath ?? 'mpv', argv, fallbackArgv, textFile, ...(opts.runAs ? { runAs: opts.runAs } : {}) };
}

/** What is spawned for one mpv argv: mpv itself, or setpriv dropping to `runAs` first. */
export function cardCommand(card: ErrorCard, argv: string[]): { command: string; args: string[] } {
  if (!card.runAs) return { command: card.mpvPath, args: argv };
  const { uid, gid } = card.runAs;
  return { command: SETPRIV, args: [`--reuid=${uid}`, `--regid=${gid}`, '--init-groups', '--inh-caps=-all', '--', card.mpvPath, ...argv] };
}

/** Plays the card (the OSD variant if drawtext fails); resolves with mpv's exit code; never throws. */
export async function showErrorCard(card: ErrorCard, seconds: number, spawn: Spawn = nodeSpawn): Promise<number | null> {
  const started = Date.now();
  const code = await play(cardCommand(card, card.argv), seconds, spawn);
  // A quick failure means mpv could not build the picture (no font for drawtext), not no display.
  if (code !== 0 && Date.now() - started < 5000) return play(cardCommand(card, card.fallbackArgv), seconds, spawn);
  return code;
}

function play(run: { command: string; args: string[] }, seconds: number, spawn: Spawn): Promise<number | null> {
  return new Promise((resolve) => {
    let child: ChildProcess;
    try {
      child = spawn(run.command, run.args, { stdio: 'ignore' });
    } catch {
      resolve(null);
      return;
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 10) * 1000);
    child.on('error', () => {
      clearTimeout(timer);
      resolve(null);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

function wrap(line: string, width: number): string[] {
  const out: string[] = [];
  let rest = line;
  while (rest.length > width) {
    let cut = rest.lastIndexOf(' ', width);
    if (cut <= 0) cut = width;
    out.push(rest.slice(0, cut));
    rest = rest.slice(cut).trimStart();
  }
  out.push(rest);
  return out;
}
