import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { DisplayState } from '../core/types.js';

export interface HdmiConnector {
  /** DRM connector name as mpv's `--drm-connector` wants it, e.g. `HDMI-A-1`. */
  name: string;
  /** sysfs directory name, e.g. `card1-HDMI-A-1` (the card index varies between boots and models). */
  dir: string;
  status: string;
}

/** HDMI connectors listed by the kernel under `<sysfsRoot>/class/drm/card*-HDMI-A-*`. */
export function listHdmiConnectors(sysfsRoot = '/sys'): HdmiConnector[] {
  const drm = path.join(sysfsRoot, 'class', 'drm');
  let names: string[];
  try {
    names = readdirSync(drm);
  } catch {
    return [];
  }
  const out: HdmiConnector[] = [];
  for (const dir of names.sort()) {
    const m = /^card\d+-(HDMI-A-\d+)$/.exec(dir);
    if (!m?.[1]) continue;
    let status: string;
    try {
      status = readFileSync(path.join(drm, dir, 'status'), 'utf8').trim();
    } catch {
      continue;
    }
    out.push({ name: m[1], dir, status });
  }
  return out;
}

/**
 * What the box knows of its screen: `connected` if any HDMI connector reports a sink,
 * `disconnected` if every one present says so, `unknown` without any (a VM, no KMS driver).
 * An LED sender behind HDMI counts as the screen: a connected sink is the best we can know.
 */
export function readDisplayState(sysfsRoot = '/sys'): DisplayState {
  const cons = listHdmiConnectors(sysfsRoot);
  if (cons.some((c) => c.status === 'connected')) return 'connected';
  if (cons.length > 0 && cons.every((c) => c.status === 'disconnected')) return 'disconnected';
  return 'unknown';
}
