import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ThrottledState } from '../protocol/outbound.js';

// Subprocess-free probes of a Linux / Raspberry Pi box. Each reads a few bytes from sysfs, so
// they are cheap enough to run on every heartbeat (free space is fsx/free-space.ts's statfs).
// `doctor` reuses them.

// The heartbeat's `throttled` object: its shape is the contract's, defined once in the protocol.
export type { ThrottledState } from '../protocol/outbound.js';

/** Parses get_throttled output: `50005`, `0x50005` or vcgencmd's `throttled=0x50005`. Undefined when unreadable. */
export function parseThrottled(text: string): ThrottledState | undefined {
  const m = /^\s*(?:throttled=)?(?:0x)?([0-9a-fA-F]{1,8})\s*$/.exec(text);
  if (!m?.[1]) return undefined;
  const v = parseInt(m[1], 16);
  const bit = (n: number): boolean => ((v >>> n) & 1) === 1;
  return {
    raw: `0x${v.toString(16)}`,
    underVoltageNow: bit(0),
    freqCappedNow: bit(1),
    throttledNow: bit(2),
    softTempLimitNow: bit(3),
    underVoltageOccurred: bit(16),
    freqCappedOccurred: bit(17),
    throttledOccurred: bit(18),
    softTempLimitOccurred: bit(19),
  };
}

/** CPU temperature in °C from `thermal_zone0` (millidegrees), one decimal; undefined when absent or garbled. */
export async function readThermalZoneC(sysfsRoot = '/sys'): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(sysfsRoot, 'class/thermal/thermal_zone0/temp'), 'utf8');
  } catch {
    return undefined;
  }
  const milli = Number(text.trim());
  if (text.trim() === '' || !Number.isFinite(milli)) return undefined;
  return Math.round(milli / 100) / 10;
}

/**
 * Where the firmware exposes get_throttled: `soc/soc:firmware` on Pi 3/4; another firmware
 * node on Pi 5, hence a shallow search under devices/platform. Undefined when not a Pi.
 */
export async function findThrottledFile(sysfsRoot = '/sys'): Promise<string | undefined> {
  const platform = path.join(sysfsRoot, 'devices/platform');
  const classic = path.join(platform, 'soc/soc:firmware/get_throttled');
  if (await readable(classic)) return classic;
  for (const a of await entries(platform)) {
    const one = path.join(platform, a, 'get_throttled');
    if (await readable(one)) return one;
  }
  for (const a of await entries(platform)) {
    for (const b of await entries(path.join(platform, a))) {
      const two = path.join(platform, a, b, 'get_throttled');
      if (await readable(two)) return two;
    }
  }
  return undefined;
}


async function entries(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch {
    return [];
  }
}

async function readable(file: string): Promise<boolean> {
  try {
    await readFile(file, 'utf8');
    return true;
  } catch {
    return false;
  }
}
