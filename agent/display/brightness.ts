import type { RunCommand } from '../health/command.js';
import type { Picture } from '../player/picture.js';

// §11 brightness: one small interface, so an LED sender's own control (NovaStar, Colorlight,
// Linsn: a serial line or a UDP/TCP protocol of its own) plugs in beside mpv's picture controls.
// `display.brightnessDriver` in the config names the driver.

export interface BrightnessDriver {
  /** As configured and reported by `doctor` and the logs. */
  readonly name: string;
  /** Sets the output level, 0..100 percent of full. Rejects when the level could not be set. */
  set(pct: number): Promise<void>;
}

/** The player's picture as the display part composes it (blank and the level together). */
export interface PictureControl {
  update(change: Partial<Picture>): Promise<void>;
}

/** Default: a video filter in mpv (every output, screenshots show it; CPU per frame below 100 %). */
export function mpvFilterBrightness(picture: PictureControl): BrightnessDriver {
  return { name: 'mpv', set: (pct) => picture.update({ filterPct: pct }) };
}

/** mpv's renderer (`contrast` as a gain): free on `--vo=gpu`, invisible to `--vo=null` screenshots. */
export function mpvGpuBrightness(picture: PictureControl): BrightnessDriver {
  return { name: 'mpv-gpu', set: (pct) => picture.update({ gpuPct: pct }) };
}

/**
 * The LED sender's own control: a program (no shell) the installer puts on the box, run with
 * `{pct}` in its arguments replaced by the level (an integer 0..100). It talks to the sender over
 * its serial port or the network and exits 0 once the sender took the level.
 * Config: `"display": {"brightnessDriver": "command", "brightnessCommand": ["/usr/local/bin/sender-bright", "--level", "{pct}"]}`.
 */
export function commandBrightness(run: RunCommand, argv: readonly string[]): BrightnessDriver {
  const [cmd, ...args] = argv;
  if (!cmd) throw new Error('display.brightnessCommand is empty');
  return {
    name: `command ${cmd}`,
    set: async (pct) => {
      const level = String(Math.round(Math.max(0, Math.min(100, pct))));
      await run(cmd, args.map((a) => a.replaceAll('{pct}', level)));
    },
  };
}

/** The picture as one value (blank and both levels), pushed whole to the player on every change. */
export class PictureState implements PictureControl {
  private p: Picture = { blank: false, filterPct: 100, gpuPct: 100 };

  constructor(private readonly player: { setPicture?(p: Picture): Promise<void> }) {}

  async update(change: Partial<Picture>): Promise<void> {
    this.p = { ...this.p, ...change };
    await this.player.setPicture?.(this.p);
  }

  current(): Picture {
    return { ...this.p };
  }
}
