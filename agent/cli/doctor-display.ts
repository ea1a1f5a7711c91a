import { access, constants } from 'node:fs/promises';
import { listCecDevices, parseCecOutput } from '../display/cec.js';
import type { CheckResult, DoctorContext, Exec } from './doctor-check.js';

// doctor's §11 lines: what standby will be on this box (HDMI-CEC or a black output) and which
// brightness driver sets the levels.

const TV_CEC_NAMES = 'Anynet+ (Samsung), Bravia Sync (Sony), SimpLink (LG), VIERA Link (Panasonic), EasyLink (Philips)';

export async function checkCec(ctx: DoctorContext, exec: Exec): Promise<CheckResult> {
  const cfg = ctx.config.display;
  if (cfg.cec === 'off') return { name: 'cec', level: 'skip', detail: 'display.cec is off: standby is a black output from mpv' };
  const device = cfg.cecDevice ?? listCecDevices(ctx.devDir)[0];
  if (!device) {
    return { name: 'cec', level: 'skip', detail: 'no /dev/cec* (no CEC adapter: a VM, a container, or an HDMI driver without one): standby is a black output from mpv' };
  }
  const conf = await exec('cec-ctl', ['-d', device, '--playback'], 5000);
  if (conf.missing) return { name: 'cec', level: 'warn', detail: `${device} present but cec-ctl is not installed: standby is a black output`, fix: 'apt-get install v4l-utils' };
  if (conf.code !== 0) return { name: 'cec', level: 'warn', detail: `cec-ctl -d ${device} --playback failed: ${(conf.stderr || conf.stdout).trim().split('\n')[0] ?? ''}`, fix: 'the service user needs the video group for /dev/cec*' };
  const r = await exec('cec-ctl', ['-d', device, '--to', '0', '--give-device-power-status'], 5000);
  const a = parseCecOutput(device, r.stdout);
  if (r.code === 0 && a.ok && a.power) return { name: 'cec', level: 'ok', detail: `${device}: the sink answered (${a.said}): standby through HDMI-CEC` };
  return {
    name: 'cec',
    level: 'warn',
    detail: `${device}: the sink did not answer (${a.ok ? 'no power status' : a.said}): standby will be a black output`,
    fix: `turn on the screen's CEC setting (${TV_CEC_NAMES}) and check the cable; an LED sender usually has no CEC, which is fine`,
  };
}

export async function checkBrightness(ctx: DoctorContext): Promise<CheckResult> {
  const cfg = ctx.config.display;
  if (cfg.brightnessDriver === 'mpv') return { name: 'brightness', level: 'ok', detail: 'driver mpv: a video filter scales the picture (every output; levels below 100 % cost CPU per frame)' };
  if (cfg.brightnessDriver === 'mpv-gpu') return { name: 'brightness', level: 'ok', detail: "driver mpv-gpu: mpv's renderer gain (free on --vo=gpu; not seen in screenshots)" };
  const bin = cfg.brightnessCommand?.[0] ?? '';
  try {
    await access(bin, constants.X_OK);
    return { name: 'brightness', level: 'ok', detail: `driver command: ${cfg.brightnessCommand!.join(' ')}` };
  } catch {
    return { name: 'brightness', level: 'fail', detail: `driver command: ${bin} is not an executable file`, fix: "install the LED sender's control tool there, or fix display.brightnessCommand (an absolute path)" };
  }
}

/**
 * Text alerts (§10) need a font with Vietnamese glyphs (precomposed and stacked diacritics: ễ, ộ,
 * ữ). fontconfig picks the family mpv's subtitle renderer gets for `sans-serif`; its `lang` set
 * says whether that family covers Vietnamese.
 */
export async function checkFont(exec: Exec): Promise<CheckResult> {
  const r = await exec('fc-match', ['-f', '%{family}|%{file}|%{lang}', 'sans-serif:lang=vi'], 5000);
  const fix = 'apt-get install fonts-noto-core (Noto Sans covers Vietnamese); fonts-dejavu-core also does';
  if (r.missing) return { name: 'font', level: 'warn', detail: 'fontconfig (fc-match) is not installed: text alerts cannot pick a font', fix: `apt-get install fontconfig; ${fix}` };
  // %{lang} is itself a |-separated list.
  const [family = '', file = '', ...langs] = r.stdout.trim().split('|');
  const name = family.split(',')[0] ?? family;
  if (r.code === 0 && langs.includes('vi')) return { name: 'font', level: 'ok', detail: `sans-serif is ${name} (${file}), which has Vietnamese glyphs` };
  return { name: 'font', level: 'warn', detail: `sans-serif is ${name || 'nothing'}${file ? ` (${file})` : ''}, without Vietnamese glyphs: text alerts would show boxes for ễ, ộ, ữ`, fix };
}
