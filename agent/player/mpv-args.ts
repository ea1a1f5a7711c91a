import { MPV_MEDIA_SAFETY_ARGS } from '../core/media-formats.js';
import { listHdmiConnectors } from './display.js';

/**
 * The agent's own mpv options, before `config.player.args` (mpv keeps the last occurrence of an
 * option, so the config can override any of these).
 */
export const AGENT_MPV_ARGS: readonly string[] = [
  // The box's mpv.conf, watch-later files and scripts must not change what the screen does.
  '--no-config',
  '--no-resume-playback',
  '--save-position-on-quit=no',
  '--ytdl=no',
  '--load-scripts=no',
  // One long-lived player: idle between files with its window (or DRM plane) kept and black.
  // On DRM, stopping and reloading loses the CRTC (mpv#10590), so mpv is never stopped.
  '--idle=yes',
  '--force-window=yes',
  '--keep-open=no',
  '--loop-file=no',
  '--loop-playlist=no',
  '--prefetch-playlist=yes',
  '--background=#000000',
  '--fullscreen',
  // A screen in the street: no OSD, no OSC (which also draws the idle logo), no input, no cursor.
  '--osc=no',
  '--osd-level=0',
  '--osd-bar=no',
  '--no-input-default-bindings',
  '--input-vo-keyboard=no',
  '--input-terminal=no',
  '--cursor-autohide=always',
  '--stop-screensaver=yes',
  '--hwdec=auto-safe',
  // Screenshots feed the evidence sampler: plain 8-bit PNG, cheap to write.
  '--screenshot-format=png',
  '--screenshot-high-bit-depth=no',
  '--screenshot-png-compression=1',
  '--msg-level=all=warn',
  // Only media containers, never a playlist inside a hash-verified file (core/media-formats.ts).
  ...MPV_MEDIA_SAFETY_ARGS,
];

export interface MpvHost {
  /** A graphical session (X11/Wayland) is running: play in a fullscreen window on it. */
  desktop: boolean;
  /** sysfs root for finding the connected HDMI connector (tests point it elsewhere). */
  sysfsRoot?: string;
}

/**
 * Output defaults for when `player.args` names no `--vo`: a fullscreen window on a desktop, else
 * DRM/KMS on the connected HDMI connector with the mode pinned (the preferred EDID mode is often
 * 4K, which a Pi can only reach by upscaling on the CPU, below real time).
 */
export function outputArgs(host: MpvHost): string[] {
  if (host.desktop) return ['--vo=gpu'];
  const cons = listHdmiConnectors(host.sysfsRoot);
  const con = cons.find((c) => c.status === 'connected') ?? cons[0];
  return ['--vo=gpu', '--gpu-context=drm', ...(con ? [`--drm-connector=${con.name}`] : []), '--drm-mode=1920x1080@60'];
}

/** Full argument list (without the IPC option, which MpvIpc adds). */
export function buildMpvArgs(userArgs: readonly string[], host?: MpvHost): string[] {
  const namesVo = userArgs.some((a) => a.startsWith('--vo=') || a === '--vo');
  return [...AGENT_MPV_ARGS, ...(namesVo || !host ? [] : outputArgs(host)), ...userArgs];
}
