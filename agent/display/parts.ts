import type { Config } from '../config/config.js';
import type { RunCommand } from '../health/command.js';
import type { Picture } from '../player/picture.js';
import { commandBrightness, mpvFilterBrightness, mpvGpuBrightness, PictureState, type BrightnessDriver } from './brightness.js';
import { CecControl, listCecDevices } from './cec.js';

/** What the display controller drives on this box, as `display` in the config picks it. */
export interface DisplayParts {
  picture: PictureState;
  brightness: BrightnessDriver;
  cec?: CecControl;
}

export interface DisplayPartsEnv {
  player: { setPicture?(p: Picture): Promise<void> };
  /** Runs `cec-ctl` and a brightness command (bounded, in main.ts's environment). */
  run: RunCommand;
  /** Where CEC nodes are looked for (tests); default /dev. */
  devDir?: string;
}

export function buildDisplayParts(cfg: Config['display'], env: DisplayPartsEnv): DisplayParts {
  const picture = new PictureState(env.player);
  const brightness =
    cfg.brightnessDriver === 'command'
      ? commandBrightness(env.run, cfg.brightnessCommand ?? [])
      : cfg.brightnessDriver === 'mpv-gpu'
        ? mpvGpuBrightness(picture)
        : mpvFilterBrightness(picture);
  if (cfg.cec === 'off') return { picture, brightness };
  // A named node is used as it is (cec-ctl says so if it is missing); else the first one present.
  const devices = cfg.cecDevice ? () => [cfg.cecDevice!] : () => listCecDevices(env.devDir);
  if (devices().length === 0) return { picture, brightness };
  return { picture, brightness, cec: new CecControl({ run: env.run, devices }) };
}
