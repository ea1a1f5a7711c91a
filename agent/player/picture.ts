import type { Logger } from '../core/log.js';
import type { MpvIpc } from './mpv-ipc.js';

/**
 * §11: what the display schedule asks of the picture (agent/display/ decides, the player applies,
 * and applies again to every new mpv after a restart). Levels are percent of full output.
 */
export interface Picture {
  /** Black and paused: standby where no HDMI-CEC sink takes the command (also under a CEC standby). */
  blank: boolean;
  /**
   * Output level through a video filter (libavfilter `lutyuv`): the YUV signal scaled toward
   * black, as dimming the RGB picture by pct/100 in its encoded values. Every output shows it,
   * screenshots included; it costs CPU per frame and, with zero-copy `--hwdec=drm`, a copy back
   * of each frame, so at 100 the filter is removed.
   */
  filterPct: number;
  /**
   * Output level through mpv's renderer: the `contrast` property at pct - 100 (mpv's contrast is a
   * gain on the output range, black stays black; `brightness` is an additive offset that would lift
   * or crush the blacks). Free on `--vo=gpu`; `--vo=null` screenshots do not show it.
   */
  gpuPct: number;
}

export const FULL_PICTURE: Picture = { blank: false, filterPct: 100, gpuPct: 100 };

const LABEL = '@signage-display';

/** The lutyuv graph for a level: Y from its black (minval) up scaled by k, chroma toward neutral. */
export function pictureFilter(p: Picture): string | undefined {
  if (p.blank) return `${LABEL}:lavfi=[lutyuv=y=minval:u=128:v=128]`;
  if (p.filterPct >= 100) return undefined;
  const k = (Math.max(0, p.filterPct) / 100).toFixed(4);
  return `${LABEL}:lavfi=[lutyuv=y=minval+(val-minval)*${k}:u=128+(val-128)*${k}:v=128+(val-128)*${k}]`;
}

/** Puts `p` on the screen of this mpv: the labelled filter replaced, contrast and pause set. */
export async function applyPicture(ipc: MpvIpc, p: Picture, log: Logger): Promise<void> {
  // The label is ours alone, so a `--vf` from player.args stays in the chain around it.
  await ipc.command(['vf', 'remove', LABEL]).catch(() => undefined);
  const vf = pictureFilter(p);
  if (vf) await ipc.command(['vf', 'add', vf]);
  await ipc.command(['set_property', 'contrast', Math.round(Math.max(0, Math.min(100, p.gpuPct)) - 100)]);
  await ipc.command(['set_property', 'pause', p.blank]);
  log.info({ picture: p }, 'picture set');
}
