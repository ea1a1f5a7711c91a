import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SystemClock } from '../core/clock.js';
import { diskFreeMB } from '../fsx/free-space.js';
import { findThrottledFile, parseThrottled } from '../health/probes.js';
import { MediaCache } from '../media/cache.js';
import { FINAL_RE } from '../media/index-file.js';
import { listHdmiConnectors } from '../player/display.js';
import { LAVF_FORMATS } from '../core/media-formats.js';
import { buildMpvArgs } from '../player/mpv-args.js';
import { inspectStore } from '../store/inspect.js';
import { storeFileOf } from './paths.js';
import { checkAlertText } from './doctor-alerts.js';
import { checkBroker, checkTransport } from './doctor-broker.js';
import { checkBrightness, checkCec, checkFont } from './doctor-display.js';
import type { CheckResult, DoctorContext, Exec, Level } from './doctor-check.js';

// `signage-agent doctor` (PROTOCOL §1, issue 5): what an installer runs at the box. One line per
// check, a fix on every line that is not fine. Warnings never fail the run; failures exit 1.

export type { CheckResult, DoctorContext, Exec, ExecResult, Level } from './doctor-check.js';

const MARK: Record<Level, string> = { ok: '✓', warn: '!', fail: '✗', skip: '-' };

export async function runDoctor(ctx: DoctorContext): Promise<number> {
  const results = await runChecks(ctx);
  for (const r of results) ctx.out(formatResult(r));
  const n = (l: Level): number => results.filter((r) => r.level === l).length;
  ctx.out(`doctor: ${n('ok')} ok, ${n('warn')} warning(s), ${n('fail')} failed`);
  return n('fail') > 0 ? 1 : 0;
}

export function formatResult(r: CheckResult): string {
  return `${MARK[r.level]} ${r.name}: ${r.detail}${r.fix && r.level !== 'ok' ? ` — fix: ${r.fix}` : ''}`;
}

/** Every check, in the order printed; none throws. */
export async function runChecks(ctx: DoctorContext): Promise<CheckResult[]> {
  const exec = ctx.exec ?? systemExec;
  const guard = async (name: string, f: () => Promise<CheckResult | CheckResult[]>): Promise<CheckResult[]> => {
    try {
      const r = await f();
      return Array.isArray(r) ? r : [r];
    } catch (e) {
      return [{ name, level: 'fail', detail: `check crashed: ${(e as Error).message}`, fix: 'report this as a bug' }];
    }
  };
  // The broker check waits on the network: run it alongside the local ones.
  const broker = guard('broker', () => checkBroker(ctx));
  const local = [
    ...(await guard('mpv', () => checkMpv(ctx, exec))),
    ...(await guard('hdmi', () => checkHdmi(ctx))),
    ...(await guard('cec', () => checkCec(ctx, exec))),
    ...(await guard('brightness', () => checkBrightness(ctx))),
    ...(await guard('font', () => checkFont(exec))),
    ...(await guard('power', () => checkThrottling(ctx))),
    ...(await guard('dataDir', () => checkDataDir(ctx))),
    ...(await guard('store', () => checkStore(ctx))),
    ...(await guard('clock', () => checkClock(exec))),
    ...(await guard('timezone', async () => checkTimezone(ctx.config.timezone))),
    ...(await guard('broker transport', async () => checkTransport(ctx))),
  ];
  const after = [...(await guard('media cache', () => checkMedia(ctx))), ...(await guard('alert text', () => checkAlertText(exec))), ...(await guard('unit', () => checkUnit(ctx, exec)))];
  return [...local, ...(await broker), ...after];
}

async function checkMpv(ctx: DoctorContext, exec: Exec): Promise<CheckResult[]> {
  const mpv = ctx.config.player.mpvPath;
  const v = await exec(mpv, ['--version'], 10_000);
  if (v.missing || v.code !== 0) {
    return [
      { name: 'mpv', level: 'fail', detail: `${mpv} ${v.missing ? 'not found' : `--version exited ${v.code}`}`, fix: 'apt-get install mpv, or set player.mpvPath to the mpv binary' },
      { name: 'mpv output', level: 'skip', detail: 'mpv missing' },
    ];
  }
  const version = (v.stdout.split('\n')[0] ?? 'mpv').replace(/\s+Copyright.*$/, '').trim();
  // The agent's own arguments, but play one frame and quit instead of idling forever.
  const args = [
    ...buildMpvArgs(ctx.config.player.args, { desktop: ctx.desktop ?? false, ...(ctx.sysfsRoot ? { sysfsRoot: ctx.sysfsRoot } : {}) }),
    '--idle=no',
    '--force-window=no',
    // The test picture comes from libavfilter, which the agent's demuxer list leaves out.
    `--demuxer-lavf-o-append=format_whitelist=${[...LAVF_FORMATS, 'lavfi'].join(',')}`,
    '--frames=1',
    '--msg-level=all=error,term-msg=status',
    '--term-playing-msg=doctor: vo=${current-vo} hwdec=${hwdec}',
    'av://lavfi:color=c=black:s=64x64:d=1',
  ];
  const r = await exec(mpv, args, ctx.mpvTimeoutMs ?? 15_000);
  const vo = /doctor: vo=(\S*) hwdec=(\S*)/.exec(r.stdout);
  const withVo = `opened vo=${vo?.[1] || '?'} (hwdec ${vo?.[2] || '?'} requested)`;
  if (r.code === 0 && vo?.[1]) {
    const hw = await probeDecoder(ctx, exec, args.slice(0, -2));
    return [{ name: 'mpv', level: 'ok', detail: version }, { name: 'mpv output', level: 'ok', detail: `${withVo}${hw}` }];
  }
  const why = lastLine(r.stderr) || lastLine(r.stdout) || (r.code === null ? 'timed out' : `exit ${r.code}`);
  if (/DRM master|resource busy/i.test(r.stderr)) {
    // One DRM master at a time: the running agent's mpv holds the display (mpv#12934).
    return [
      { name: 'mpv', level: 'ok', detail: version },
      { name: 'mpv output', level: 'warn', detail: 'the display is held by another program (the running agent?)', fix: 'to test the output itself: systemctl stop signage-agent, run doctor, systemctl start signage-agent' },
    ];
  }
  return [
    { name: 'mpv', level: 'ok', detail: version },
    {
      name: 'mpv output',
      level: 'fail',
      detail: `cannot open the configured output: ${why}`,
      fix: 'check player.args (--vo, --gpu-context, --drm-connector), that the signage user is in the video and render groups, and that no other program holds the display',
    },
  ];
}

/** The decoder mpv really gets (`hwdec-current`) on the smallest cached clip; cheap: one frame. */
async function probeDecoder(ctx: DoctorContext, exec: Exec, args: string[]): Promise<string> {
  const dir = path.join(ctx.config.dataDir, 'media');
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => FINAL_RE.test(n));
  } catch {
    names = [];
  }
  if (names.length === 0) return '; no cached clip yet to probe the decoder on';
  const sized = await Promise.all(names.map(async (n) => ({ n, size: (await stat(path.join(dir, n))).size })));
  const clip = sized.sort((a, b) => a.size - b.size)[0]!.n;
  const r = await exec(ctx.config.player.mpvPath, [...args, '--term-playing-msg=doctor: hwdec-current=${hwdec-current}', path.join(dir, clip)], ctx.mpvTimeoutMs ?? 15_000);
  const hw = /doctor: hwdec-current=(\S*)/.exec(r.stdout)?.[1];
  return hw ? `; decoder on a cached clip: ${hw === 'no' ? 'software' : hw}` : '; the decoder probe on a cached clip failed';
}

async function checkHdmi(ctx: DoctorContext): Promise<CheckResult> {
  const cons = listHdmiConnectors(ctx.sysfsRoot);
  if (cons.length === 0) return { name: 'hdmi', level: 'warn', detail: 'no HDMI connector in sysfs (a VM, or no KMS driver): display state unknown', fix: 'on a Pi, keep dtoverlay=vc4-kms-v3d in config.txt' };
  const list = cons.map((c) => `${c.name} ${c.status}`).join(', ');
  if (cons.some((c) => c.status === 'connected')) return { name: 'hdmi', level: 'ok', detail: list };
  return { name: 'hdmi', level: 'fail', detail: list, fix: 'check the HDMI cable and that the screen or LED sender card is powered; use the port next to the power input (HDMI-A-1)' };
}

async function checkThrottling(ctx: DoctorContext): Promise<CheckResult> {
  const file = await findThrottledFile(ctx.sysfsRoot);
  if (!file) return { name: 'power', level: 'skip', detail: 'no get_throttled in sysfs (not a Raspberry Pi)' };
  const s = parseThrottled(await readFile(file, 'utf8'));
  if (!s) return { name: 'power', level: 'warn', detail: `unreadable get_throttled in ${file}` };
  const now = [s.underVoltageNow && 'under-voltage', s.throttledNow && 'throttled', s.freqCappedNow && 'frequency capped', s.softTempLimitNow && 'soft temperature limit'].filter(Boolean);
  const past = [s.underVoltageOccurred && 'under-voltage', s.throttledOccurred && 'throttling', s.freqCappedOccurred && 'frequency capping', s.softTempLimitOccurred && 'soft temperature limit'].filter(Boolean);
  const fix = s.underVoltageNow || s.underVoltageOccurred ? 'use the official 5 V power supply (5.1 V/3 A, 5 A on a Pi 5) and a short cable' : 'improve cooling: heatsink or fan, and airflow in the enclosure';
  if (now.length > 0) return { name: 'power', level: 'fail', detail: `${now.join(', ')} now (${s.raw})`, fix };
  if (past.length > 0) return { name: 'power', level: 'warn', detail: `${past.join(', ')} since boot (${s.raw})`, fix };
  return { name: 'power', level: 'ok', detail: `no under-voltage or throttling (${s.raw})` };
}

async function checkDataDir(ctx: DoctorContext): Promise<CheckResult> {
  const dir = ctx.config.dataDir;
  const probe = path.join(dir, `.doctor-${process.pid}`);
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(probe, 'ok');
    await unlink(probe);
  } catch (e) {
    return { name: 'dataDir', level: 'fail', detail: `${dir} is not writable: ${(e as Error).message}`, fix: `create it and give it to the agent's user: install -d -o signage -g signage -m 0750 ${dir}` };
  }
  const free = await diskFreeMB(dir);
  const min = ctx.minFreeMB ?? 500;
  if (free < min) return { name: 'dataDir', level: 'warn', detail: `${dir} writable, only ${free} MB free`, fix: `free space or lower media.cacheMaxMB (${ctx.config.media.cacheMaxMB} MB); ${min} MB is the minimum advised` };
  return { name: 'dataDir', level: 'ok', detail: `${dir} writable, ${free} MB free` };
}

/** The proof-of-play store: opens read-only, and names stores the agent moved aside (issue 14 item 3). */
async function checkStore(ctx: DoctorContext): Promise<CheckResult[]> {
  const file = storeFileOf(ctx.config);
  const s = await inspectStore(file);
  const out: CheckResult[] = [];
  if (s.error) {
    out.push({ name: 'store', level: 'fail', detail: `${file} cannot be opened (${s.error})`, fix: "the agent moves it aside and starts a fresh store at its next start (a store-replaced event says so; today's counts restart at zero); keep the file for a post-mortem" });
  } else if (!s.exists) {
    out.push(
      s.missing
        ? { name: 'store', level: 'warn', detail: `${file} is missing although this dataDir had a store`, fix: 'the agent makes a fresh one (new storeId) and says so in a store-replaced event; check what deleted it' }
        : { name: 'store', level: 'ok', detail: `${file} not made yet (the first start makes it)` },
    );
  } else {
    out.push({ name: 'store', level: 'ok', detail: `${file}: schema ${s.schema}, storeId ${s.storeId ?? '(made at the next start)'}, quick_check ok` });
  }
  if (s.movedAside.length > 0) {
    out.push({
      name: 'store moved aside',
      level: 'warn',
      detail: `${s.movedAside.length} store(s) the agent could not open were moved aside: ${s.movedAside.join(', ')}`,
      fix: `the plays they held were lost to the NOC's day counts; keep them for a post-mortem, then delete them from ${ctx.config.dataDir}`,
    });
  }
  return out;
}

async function checkClock(exec: Exec): Promise<CheckResult> {
  const r = await exec('timedatectl', ['show', '-p', 'NTPSynchronized', '--value'], 5000);
  if (r.missing) return { name: 'clock', level: 'warn', detail: 'timedatectl not found: cannot tell whether the clock is synchronised', fix: 'install systemd-timesyncd (or chrony) and keep NTP on' };
  const v = r.stdout.trim();
  if (r.code === 0 && v === 'yes') return { name: 'clock', level: 'ok', detail: 'synchronised (NTP)' };
  if (r.code === 0 && v === 'no') return { name: 'clock', level: 'fail', detail: 'not synchronised: plays are flagged clockSynced=false and screens drift apart', fix: 'check that UDP 123 reaches an NTP server: timedatectl timesync-status; timedatectl set-ntp true' };
  return { name: 'clock', level: 'warn', detail: `cannot tell (timedatectl: ${lastLine(r.stderr) || `exit ${r.code}`})`, fix: 'run on a systemd system, or check timedatectl by hand' };
}

export function checkTimezone(tz: string, now = new Date()): CheckResult {
  try {
    const fmt = new Intl.DateTimeFormat('en-GB', { timeZone: tz, hour: '2-digit', minute: '2-digit', timeZoneName: 'shortOffset' });
    return { name: 'timezone', level: 'ok', detail: `${tz}, local time ${fmt.format(now)}` };
  } catch {
    return { name: 'timezone', level: 'fail', detail: `${tz} is not a known IANA timezone`, fix: 'set timezone to a name such as Asia/Ho_Chi_Minh' };
  }
}

async function checkMedia(ctx: DoctorContext): Promise<CheckResult> {
  const dir = path.join(ctx.config.dataDir, 'media');
  const cache = new MediaCache({ dir, maxBytes: ctx.config.media.cacheMaxMB * 1024 * 1024, clock: new SystemClock(), log: ctx.log, sources: ctx.config.media });
  const problems = await cache.verifyAll();
  if (problems.length === 1 && problems[0]?.startsWith('cannot read') && /ENOENT/.test(problems[0])) {
    return { name: 'media cache', level: 'ok', detail: `${dir} empty (nothing downloaded yet)` };
  }
  if (problems.length > 0) {
    return { name: 'media cache', level: 'fail', detail: `${problems.length} bad file(s): ${problems.slice(0, 3).join('; ')}${problems.length > 3 ? '; …' : ''}`, fix: `delete them from ${dir}; the agent downloads them again` };
  }
  return { name: 'media cache', level: 'ok', detail: `${dir}: every file matches its sha256` };
}

async function checkUnit(ctx: DoctorContext, exec: Exec): Promise<CheckResult> {
  const unit = ctx.unitName ?? 'signage-agent';
  const r = await exec('systemctl', ['is-active', unit], 5000);
  if (r.missing) return { name: 'unit', level: 'warn', detail: 'systemctl not found: not a systemd system', fix: 'run the agent under systemd (provisioning/install.sh installs the unit)' };
  const state = r.stdout.trim();
  if (state === 'active' || state === 'activating' || state === 'reloading') return { name: 'unit', level: 'ok', detail: `${unit} ${state}` };
  if (state === 'failed') return { name: 'unit', level: 'fail', detail: `${unit} failed`, fix: `journalctl -u ${unit} -n 50, fix the cause, then systemctl restart ${unit}` };
  if (state === 'inactive') return { name: 'unit', level: 'warn', detail: `${unit} inactive`, fix: `systemctl enable --now ${unit}` };
  return { name: 'unit', level: 'warn', detail: `${unit}: ${state || lastLine(r.stderr) || `systemctl exit ${r.code}`}`, fix: 'check with systemctl status' };
}

function lastLine(s: string): string {
  return s.split('\n').map((l) => l.trim()).filter(Boolean).pop() ?? '';
}

/** Runs a program without a shell, bounded in time; never rejects. */
export const systemExec: Exec = (cmd, args, timeoutMs) =>
  new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 256 * 1024, encoding: 'utf8', killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: unknown; killed?: boolean }) | null;
      if (e?.code === 'ENOENT') return resolve({ code: null, stdout: '', stderr: '', missing: true });
      const code = e ? (typeof e.code === 'number' ? e.code : null) : 0;
      resolve({ code, stdout, stderr: e?.killed ? `${stderr}\ntimed out after ${timeoutMs} ms` : stderr, missing: false });
    });
  });
