import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { type DoctorContext, type Exec, checkTimezone, runDoctor, systemExec } from '../agent/cli/doctor.js';
import { isLoopbackUrl } from '../agent/cli/doctor-broker.js';
import { parseConfig } from '../agent/config/config.js';
import { silentLogger } from '../agent/core/log.js';
import { sha256File } from './helpers/agent-proc.js';
import { makeClip } from './helpers/clips.js';
import { startBroker } from './helpers/mosquitto.js';
import { freePort } from './helpers/ports.js';
import { tempDir } from './helpers/tmp.js';

/** A sysfs with one HDMI connector and a Pi's get_throttled. */
function fakeSysfs(dir: string, hdmi: string, throttled: string): string {
  const root = path.join(dir, 'sys');
  mkdirSync(path.join(root, 'class/drm/card1-HDMI-A-1'), { recursive: true });
  writeFileSync(path.join(root, 'class/drm/card1-HDMI-A-1/status'), hdmi + '\n');
  mkdirSync(path.join(root, 'devices/platform/soc/soc:firmware'), { recursive: true });
  writeFileSync(path.join(root, 'devices/platform/soc/soc:firmware/get_throttled'), throttled + '\n');
  return root;
}

/** The real programs, except the two that need a booted systemd, which this box may lack. */
const fakeSystemd: Exec = async (cmd, args, timeoutMs) => {
  if (cmd === 'timedatectl') return { code: 0, stdout: 'yes\n', stderr: '', missing: false };
  if (cmd === 'systemctl') return { code: 0, stdout: 'active\n', stderr: '', missing: false };
  // fontconfig's answer as on a box with Noto (a clean CI image may have no fonts at all).
  if (cmd === 'fc-match') return { code: 0, stdout: 'Noto Sans|/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf|aa|af|en|vi|zu', stderr: '', missing: false };
  return systemExec(cmd, args, timeoutMs);
};

async function doctor(t: Test, over: { mpvPath?: string; url?: string; dataDir?: string; hdmi?: string; throttled?: string; exec?: Exec; devDir?: string; display?: Record<string, unknown> }): Promise<{ code: number; lines: string[] }> {
  const dir = tempDir(t, 'doctor-');
  const devDir = over.devDir ?? path.join(dir, 'dev');
  mkdirSync(devDir, { recursive: true });
  const url = over.url ?? (await startBroker(t)).url;
  const config = parseConfig(
    { deviceId: 'doc-1', dataDir: over.dataDir ?? path.join(dir, 'data'), mqtt: { url }, player: { mpvPath: over.mpvPath ?? 'mpv', args: ['--vo=null', '--ao=null'] }, ...(over.display ? { display: over.display } : {}) },
    path.join(dir, 'signage-agent.json'),
  );
  const lines: string[] = [];
  const ctx: DoctorContext = {
    config,
    log: silentLogger(),
    out: (l) => lines.push(l),
    exec: over.exec ?? fakeSystemd,
    sysfsRoot: fakeSysfs(dir, over.hdmi ?? 'connected', over.throttled ?? '0x0'),
    devDir,
    brokerTimeoutMs: 3000,
  };
  return { code: await runDoctor(ctx), lines };
}

const line = (lines: string[], name: string): string => lines.find((l) => l.slice(2).startsWith(`${name}:`)) ?? `(no ${name} line)`;

t.test('a healthy box passes every check', async (t) => {
  const dir = tempDir(t, 'doctor-ok-');
  mkdirSync(path.join(dir, 'data', 'media'), { recursive: true });
  const clip = await makeClip({ kind: 'pattern', seconds: 1 });
  copyFileSync(clip, path.join(dir, 'data', 'media', `${sha256File(clip)}.mp4`));
  const { code, lines } = await doctor(t, { dataDir: path.join(dir, 'data') });
  t.equal(code, 0, lines.join('\n'));
  for (const n of ['mpv', 'mpv output', 'hdmi', 'brightness', 'font', 'power', 'dataDir', 'store', 'clock', 'timezone', 'broker', 'media cache', 'alert text', 'unit']) {
    t.match(line(lines, n), /^✓ /, n);
  }
  t.match(line(lines, 'cec'), /^- cec: no \/dev\/cec\* .*standby is a black output from mpv$/, 'no CEC adapter here: skipped, and says what standby will be');
  t.match(line(lines, 'brightness'), /driver mpv: a video filter/);
  t.match(line(lines, 'mpv output'), /opened vo=null .*; decoder on a cached clip: \S+$/);
  t.match(line(lines, 'media cache'), /every file matches its sha256/);
  t.match(line(lines, 'font'), /^✓ font: sans-serif is Noto Sans \(\/usr\/share\/fonts\/truetype\/noto\/NotoSans-Regular\.ttf\), which has Vietnamese glyphs$/);
  t.match(lines.at(-1), /14 ok, 0 warning\(s\), 0 failed/);
});

t.test('missing mpv fails clearly', async (t) => {
  const { code, lines } = await doctor(t, { mpvPath: '/nonexistent/mpv' });
  t.equal(code, 1);
  t.match(line(lines, 'mpv'), /^✗ mpv: \/nonexistent\/mpv not found — fix: apt-get install mpv/);
});

t.test('an unreachable broker fails clearly', async (t) => {
  const port = await freePort();
  const { code, lines } = await doctor(t, { url: `mqtt://127.0.0.1:${port}` });
  t.equal(code, 1);
  t.match(line(lines, 'broker'), new RegExp(`^✗ broker: cannot connect to mqtt://127.0.0.1:${port}: .*ECONNREFUSED.* — fix: nothing listens there`));
});

t.test('plain mqtt:// to a host other than this box is a warning; TLS or loopback is not', async (t) => {
  // `.invalid` never resolves (RFC 6761): the broker check fails and sends nothing anywhere, and
  // the transport warning stands on the config alone.
  const { lines } = await doctor(t, { url: 'mqtt://noc.invalid:1883' });
  t.match(line(lines, 'broker transport'), /^! broker transport: mqtt:\/\/noc\.invalid:1883 is plain text to a host that is not this box — fix: use mqtts:\/\//);
  const tls = await doctor(t, { url: 'mqtts://noc.invalid:8883' });
  t.equal(line(tls.lines, 'broker transport'), '(no broker transport line)', 'mqtts: no warning');
  t.equal(line((await doctor(t, { url: 'ws://noc.invalid:9001' })).lines, 'broker transport').slice(0, 2), '! ', 'ws:// warns too');
  for (const u of ['mqtt://127.0.0.1:1', 'mqtt://localhost:1', 'mqtt://[::1]:1', 'mqtt://127.8.9.10:1', 'mqtt://[::ffff:127.0.0.1]:1']) t.ok(isLoopbackUrl(u), `${u} is loopback`);
  for (const u of ['mqtt://10.0.0.5:1883', 'mqtt://noc.example.vn', 'mqtt://127.0.0.1.example.vn', 'mqtt://[::ffff:10.0.0.1]:1', 'not a url']) t.notOk(isLoopbackUrl(u), `${u} is not loopback`);
});

t.test('an unwritable dataDir fails clearly', async (t) => {
  const dir = tempDir(t, 'doctor-ro-');
  writeFileSync(path.join(dir, 'a-file'), '');
  // Under a regular file: unwritable even for root, which the CI may run as.
  const { code, lines } = await doctor(t, { dataDir: path.join(dir, 'a-file', 'data') });
  t.equal(code, 1);
  t.match(line(lines, 'dataDir'), /^✗ dataDir: .*a-file\/data is not writable: .* — fix: create it and give it to the agent's user/);
});

t.test('disconnected HDMI, under-voltage and a corrupt cached file fail; a VM and no systemd only warn', async (t) => {
  const dir = tempDir(t, 'doctor-media-');
  const media = path.join(dir, 'data', 'media');
  mkdirSync(media, { recursive: true });
  writeFileSync(path.join(media, 'a'.repeat(64) + '.mp4'), 'not the content you hashed');
  const { code, lines } = await doctor(t, { dataDir: path.join(dir, 'data'), hdmi: 'disconnected', throttled: '0x50005' });
  t.equal(code, 1);
  t.match(line(lines, 'hdmi'), /^✗ hdmi: HDMI-A-1 disconnected — fix: check the HDMI cable/);
  t.match(line(lines, 'power'), /^✗ power: under-voltage, throttled now \(0x50005\) — fix: use the official 5 V power supply/);
  t.match(line(lines, 'media cache'), /^✗ media cache: 1 bad file\(s\): a{64}\.mp4: content hashes to/);

  const missing: Exec = async (cmd, args, ms) =>
    cmd === 'timedatectl' || cmd === 'systemctl' ? { code: null, stdout: '', stderr: '', missing: true } : systemExec(cmd, args, ms);
  const vm = await doctor(t, { exec: missing, throttled: '0x0' });
  t.match(line(vm.lines, 'clock'), /^! clock: timedatectl not found/);
  t.match(line(vm.lines, 'unit'), /^! unit: systemctl not found/);
  const noFfmpeg: Exec = async (cmd, args, ms) => (cmd === 'ffmpeg' ? { code: null, stdout: '', stderr: '', missing: true } : missing(cmd, args, ms));
  t.match(line((await doctor(t, { exec: noFfmpeg, throttled: '0x0' })).lines, 'alert text'), /^! alert text: ffmpeg not found: text alerts cannot be drawn — fix: apt-get install ffmpeg fonts-dejavu-core/);
  t.equal(vm.code, 0, 'warnings do not fail');
});

t.test('timezone check', async (t) => {
  t.match(checkTimezone('Asia/Ho_Chi_Minh', new Date('2024-08-15T01:00:00Z')).detail, /08:00 GMT\+7/);
  t.equal(checkTimezone('Mars/Olympus').level, 'fail');
});

t.test('a display held by the running agent is a warning, not a failure', async (t) => {
  const busy: Exec = async (cmd, args, ms) => {
    if (cmd === 'mpv' && args.includes('--frames=1')) return { code: 2, stdout: '', stderr: '[vo/gpu/drm] Failed to acquire DRM master: Device or resource busy\n', missing: false };
    return fakeSystemd(cmd, args, ms);
  };
  const { code, lines } = await doctor(t, { exec: busy });
  t.match(line(lines, 'mpv output'), /^! mpv output: the display is held by another program .* — fix: .*systemctl stop signage-agent/);
  t.equal(code, 0);
});

t.test('store: a healthy store shows its storeId; a broken one fails; moved-aside stores are named', async (t) => {
  const { SqliteStore } = await import('../agent/store/sqlite-store.js');
  const dir = tempDir(t, 'doctor-store-');
  const data = path.join(dir, 'data');
  const store = new SqliteStore({ file: path.join(data, 'agent.db'), log: silentLogger(), recover: true });
  await store.start();
  const id = store.storeId();
  await store.stop();
  const healthy = await doctor(t, { dataDir: data });
  t.match(line(healthy.lines, 'store'), new RegExp(`^✓ store: .*storeId ${id}, quick_check ok`));
  t.equal(line(healthy.lines, 'store moved aside'), '(no store moved aside line)');

  writeFileSync(path.join(data, 'agent.db'), 'not a database at all, just garbage bytes'.repeat(200));
  writeFileSync(path.join(data, 'agent.db.broken-20261202T101500Z'), 'old');
  const broken = await doctor(t, { dataDir: data });
  t.equal(broken.code, 1, 'a store that cannot be opened fails doctor');
  t.match(line(broken.lines, 'store'), /^✗ store: .*cannot be opened \(SQLITE_NOTADB/);
  t.match(line(broken.lines, 'store moved aside'), /^! store moved aside: 1 store\(s\).*agent\.db\.broken-20261202T101500Z/);
});

t.test('display: CEC presence and what the sink said, the brightness driver in use', async (t) => {
  const dir = tempDir(t, 'doctor-cec-');
  const devDir = path.join(dir, 'dev');
  mkdirSync(devDir, { recursive: true });
  writeFileSync(path.join(devDir, 'cec0'), '');
  const calls: string[] = [];
  // cec-ctl as it answers (no CEC adapter in this container: its output, not a real sink).
  const sink = (answer: 'on' | 'nack'): Exec => async (cmd, args, ms) => {
    if (cmd !== 'cec-ctl') return fakeSystemd(cmd, args, ms);
    calls.push(args.join(' '));
    if (args.includes('--playback')) return { code: 0, stdout: 'Driver Info:\n', stderr: '', missing: false };
    const stdout = answer === 'on'
      ? 'Transmit from Playback Device 1 to TV (4 to 0):\nCEC_MSG_GIVE_DEVICE_POWER_STATUS (0x8f)\n    Received from TV (0 to 4):\n\tCEC_MSG_REPORT_POWER_STATUS (0x90):\n\t\tpwr-state: on (0x00)\n'
      : 'Transmit from Playback Device 1 to TV (4 to 0):\nCEC_MSG_GIVE_DEVICE_POWER_STATUS (0x8f)\n\tTx, Not Acknowledged (2), Max Retries\n';
    return { code: 0, stdout, stderr: '', missing: false };
  };
  const good = await doctor(t, { devDir, exec: sink('on') });
  t.match(line(good.lines, 'cec'), new RegExp(`^✓ cec: ${devDir}/cec0: the sink answered \\(pwr-state: on\\): standby through HDMI-CEC$`));
  t.same(calls, [`-d ${devDir}/cec0 --playback`, `-d ${devDir}/cec0 --to 0 --give-device-power-status`]);
  const deaf = await doctor(t, { devDir, exec: sink('nack') });
  t.match(line(deaf.lines, 'cec'), /^! cec: .*cec0: the sink did not answer \(Tx, Not Acknowledged \(2\), Max Retries\): standby will be a black output — fix: turn on the screen's CEC setting/);
  t.equal(deaf.code, 0, 'a warning');
  const off = await doctor(t, { devDir, exec: sink('on'), display: { cec: 'off' } });
  t.match(line(off.lines, 'cec'), /^- cec: display.cec is off/);
  const gpu = await doctor(t, { display: { brightnessDriver: 'mpv-gpu' } });
  t.match(line(gpu.lines, 'brightness'), /^✓ brightness: driver mpv-gpu/);
  const tool = path.join(dir, 'sender-bright');
  writeFileSync(tool, '#!/bin/sh\n');
  chmodSync(tool, 0o755);
  const cmd = await doctor(t, { display: { brightnessDriver: 'command', brightnessCommand: [tool, '{pct}'] } });
  t.match(line(cmd.lines, 'brightness'), new RegExp(`^✓ brightness: driver command: ${tool} \\{pct\\}$`));
  const missing = await doctor(t, { display: { brightnessDriver: 'command', brightnessCommand: [path.join(dir, 'nope'), '{pct}'] } });
  t.match(line(missing.lines, 'brightness'), /^✗ brightness: driver command: .*nope is not an executable file/);
  t.equal(missing.code, 1);
});

t.test('font: a sans-serif without Vietnamese glyphs, or no fontconfig, is a warning with the fix', async (t) => {
  const answer = (stdout: string, missing = false): Exec => async (cmd, args, ms) =>
    cmd === 'fc-match' ? { code: missing ? null : 0, stdout, stderr: '', missing } : fakeSystemd(cmd, args, ms);
  const latin = await doctor(t, { exec: answer('Some Latin|/usr/share/fonts/latin.ttf|en|fr|de') });
  t.match(line(latin.lines, 'font'), /^! font: sans-serif is Some Latin \(\/usr\/share\/fonts\/latin\.ttf\), without Vietnamese glyphs: .* — fix: apt-get install fonts-noto-core/);
  t.equal(latin.code, 0);
  const none = await doctor(t, { exec: answer('', true) });
  t.match(line(none.lines, 'font'), /^! font: fontconfig \(fc-match\) is not installed.* — fix: apt-get install fontconfig; /);
});
