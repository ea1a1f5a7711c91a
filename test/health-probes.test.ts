import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { silentLogger } from '../agent/core/log.js';
import { diskFreeMB } from '../agent/fsx/free-space.js';
import { findThrottledFile, parseThrottled, readThermalZoneC } from '../agent/health/probes.js';
import { HealthSampler } from '../agent/health/sampler.js';
import { tempDir } from './helpers/tmp.js';

/** A fake sysfs tree of real files under a temp dir. */
function fakeSys(t: { teardown(fn: () => void): void }, files: Record<string, string>): string {
  const root = tempDir(t, 'sysfs-');
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), text);
  }
  return root;
}

const enoent = (): Promise<string> => Promise.reject(Object.assign(new Error('spawn vcgencmd ENOENT'), { code: 'ENOENT' }));

t.test('parseThrottled decodes the now and since-boot bits', async (t) => {
  const s = parseThrottled('50005\n');
  t.match(s, {
    raw: '0x50005',
    underVoltageNow: true,
    freqCappedNow: false,
    throttledNow: true,
    softTempLimitNow: false,
    underVoltageOccurred: true,
    freqCappedOccurred: false,
    throttledOccurred: true,
    softTempLimitOccurred: false,
  });
  t.match(parseThrottled('throttled=0x8000a'), { freqCappedNow: true, softTempLimitNow: true, underVoltageNow: false, softTempLimitOccurred: true });
  t.match(parseThrottled('0'), { raw: '0x0', underVoltageNow: false, underVoltageOccurred: false });
  t.equal(parseThrottled('error=1'), undefined);
  t.equal(parseThrottled(''), undefined);
});

t.test('temperature from thermal_zone0 in millidegrees', async (t) => {
  t.equal(await readThermalZoneC(fakeSys(t, { 'class/thermal/thermal_zone0/temp': '48312\n' })), 48.3);
  t.equal(await readThermalZoneC(fakeSys(t, { 'class/thermal/thermal_zone0/temp': 'garbage' })), undefined);
  t.equal(await readThermalZoneC(fakeSys(t, {})), undefined);
});

t.test('get_throttled found at the Pi 4 path and by search (Pi 5 layout)', async (t) => {
  const pi4 = fakeSys(t, { 'devices/platform/soc/soc:firmware/get_throttled': '0\n' });
  t.equal(await findThrottledFile(pi4), path.join(pi4, 'devices/platform/soc/soc:firmware/get_throttled'));
  const pi5 = fakeSys(t, {
    'devices/platform/axi/uevent': '',
    'devices/platform/soc@107c000000/soc@107c000000:firmware/get_throttled': '50000\n',
  });
  t.equal(await findThrottledFile(pi5), path.join(pi5, 'devices/platform/soc@107c000000/soc@107c000000:firmware/get_throttled'));
  t.equal(await findThrottledFile(fakeSys(t, { 'devices/platform/serial8250/uevent': '' })), undefined);
});

t.test('diskFreeMB of a directory that does not exist yet uses its parent', async (t) => {
  const root = fakeSys(t, {});
  const free = await diskFreeMB(path.join(root, 'not', 'yet'));
  t.ok(Number.isInteger(free) && free >= 0, `free ${free} MB`);
});

t.test('sampler on a fake Pi: sysfs temperature and throttling, no subprocess', async (t) => {
  const root = fakeSys(t, {
    'class/thermal/thermal_zone0/temp': '71250\n',
    'devices/platform/soc/soc:firmware/get_throttled': '50005\n',
  });
  const calls: string[] = [];
  const sampler = new HealthSampler({
    dataDir: root,
    log: silentLogger(),
    sysfsRoot: root,
    runCommand: (cmd) => (calls.push(cmd), enoent()),
  });
  await sampler.start();
  const s = await sampler.sample();
  await sampler.stop();
  t.equal(s.cpuTempC, 71.3);
  t.match(s.throttled, { raw: '0x50005', underVoltageNow: true, throttledNow: true, underVoltageOccurred: true });
  t.ok(s.memUsedPct > 0 && s.memUsedPct <= 100, `mem ${s.memUsedPct}%`);
  t.ok(s.load1 >= 0);
  t.ok(s.diskFreeMB >= 0);
  t.same(calls, [], 'no command run when sysfs answers');
  t.ok(sampler.timings()['get_throttled']!.calls >= 1);
});

t.test('sampler off-Pi: vcgencmd fallback, then null once it is known missing', async (t) => {
  const root = fakeSys(t, {});
  let n = 0;
  const withVc = new HealthSampler({
    dataDir: root,
    log: silentLogger(),
    sysfsRoot: root,
    runCommand: async (cmd, args) => {
      n++;
      t.same([cmd, ...args], ['vcgencmd', 'get_throttled']);
      return 'throttled=0x20002\n';
    },
  });
  t.match((await withVc.sample()).throttled, { freqCappedNow: true, freqCappedOccurred: true, underVoltageNow: false });
  await withVc.sample();
  t.equal(n, 1, 'vcgencmd result is cached');

  let missing = 0;
  const without = new HealthSampler({ dataDir: root, log: silentLogger(), sysfsRoot: root, runCommand: () => (missing++, enoent()) });
  t.equal((await without.sample()).throttled, null);
  t.equal((await without.sample()).throttled, null);
  t.equal(missing, 1, 'a missing vcgencmd is not retried');
  const temp = (await without.sample()).cpuTempC;
  t.ok(temp === null || (typeof temp === 'number' && Number.isFinite(temp)), 'fallback temperature is a number or null');
});
