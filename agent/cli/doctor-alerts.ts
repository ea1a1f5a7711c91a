import { access } from 'node:fs/promises';
import { DEFAULT_ALERT_FONT } from '../alerts/text-card.js';
import type { CheckResult, Exec } from './doctor-check.js';

/**
 * §10 text alerts need ffmpeg with drawtext and the font with Vietnamese letters. A warning, not
 * a failure: alerts with a clip play without them, a text alert would wait (and the NOC hears
 * a `media-failed`).
 */
export async function checkAlertText(exec: Exec, fontFile = DEFAULT_ALERT_FONT): Promise<CheckResult> {
  const name = 'alert text';
  const fix = 'apt-get install ffmpeg fonts-dejavu-core (provisioning/install.sh installs both)';
  const font = await access(fontFile).then(() => true, () => false);
  const r = await exec('ffmpeg', ['-hide_banner', '-filters'], 10_000);
  if (r.missing) return { name, level: 'warn', detail: `ffmpeg not found: text alerts cannot be drawn${font ? '' : `; ${fontFile} missing too`}`, fix };
  if (!/\sdrawtext\s/.test(r.stdout)) return { name, level: 'warn', detail: 'this ffmpeg has no drawtext filter (built without libfreetype): text alerts cannot be drawn', fix: 'install Debian\'s ffmpeg' };
  if (!font) return { name, level: 'warn', detail: `${fontFile} missing: text alerts cannot be drawn with Vietnamese letters`, fix };
  return { name, level: 'ok', detail: `ffmpeg drawtext and ${fontFile} (Vietnamese letters)` };
}
