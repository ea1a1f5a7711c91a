import { readdirSync } from 'node:fs';
import path from 'node:path';
import type { RunCommand } from '../health/command.js';

// HDMI-CEC through `cec-ctl` (v4l-utils), the kernel CEC framework's own tool: /dev/cecN exists
// where the HDMI driver has a CEC adapter (vc4 on a Pi with full KMS). The box presents itself as
// a playback device and talks to the TV (logical address 0); a sink that is not there or ignores
// CEC leaves its messages unacknowledged, which cec-ctl prints as a Tx status.

export type SinkPower = 'on' | 'standby' | 'to-on' | 'to-standby';

export interface CecAnswer {
  device: string;
  /** The sink acknowledged (and, for the power query, answered). */
  ok: boolean;
  /** What the sink reported in <Report Power Status>, when it did. */
  power?: SinkPower;
  /** The line that tells what happened (the sink's answer or the failure), for events and doctor. */
  said: string;
}

const FAILED_TX = /^.*(Not Acknowledged|Tx, Error|Tx, Timeout|Tx, Aborted|Arbitration Lost|Low Drive).*$/m;
const PWR_STATE = /pwr-state:\s*(on|standby|to-on|to-standby)\b/;

/** Reads what cec-ctl printed: a refused transmit, or the sink's power status. */
export function parseCecOutput(device: string, out: string): CecAnswer {
  const failed = FAILED_TX.exec(out);
  if (failed) return { device, ok: false, said: failed[0].trim() };
  const pwr = PWR_STATE.exec(out);
  if (pwr) return { device, ok: true, power: pwr[1] as SinkPower, said: `pwr-state: ${pwr[1]}` };
  return { device, ok: true, said: 'acknowledged' };
}

export interface CecContext {
  run: RunCommand;
  /** The CEC device nodes present (`/dev/cec*`), first used. */
  devices: () => string[];
  /** `cec-ctl` by default. */
  cecCtl?: string;
}

export class CecControl {
  private configured = false;

  constructor(private readonly ctx: CecContext) {}

  device(): string | undefined {
    return this.ctx.devices()[0];
  }

  /** Asks the TV for its power status (the sink's answer, or why there was none). */
  powerStatus(): Promise<CecAnswer> {
    return this.send(['--to', '0', '--give-device-power-status']);
  }

  standby(): Promise<CecAnswer> {
    return this.send(['--to', '0', '--standby']);
  }

  /** <Image View On>: a TV in standby powers up and shows this input. */
  wake(): Promise<CecAnswer> {
    return this.send(['--to', '0', '--image-view-on']);
  }

  private async send(args: string[]): Promise<CecAnswer> {
    const device = this.device();
    if (!device) return { device: '', ok: false, said: 'no /dev/cec* device' };
    const cmd = this.ctx.cecCtl ?? 'cec-ctl';
    try {
      // The adapter needs a logical address before it can transmit; once per agent run.
      if (!this.configured) {
        await this.ctx.run(cmd, ['-d', device, '--playback']);
        this.configured = true;
      }
      return parseCecOutput(device, await this.ctx.run(cmd, ['-d', device, ...args]));
    } catch (e) {
      const err = e as Error & { stdout?: string; code?: string | number };
      if (typeof err.stdout === 'string' && FAILED_TX.test(err.stdout)) return parseCecOutput(device, err.stdout);
      return { device, ok: false, said: `${cmd} failed: ${err.code === 'ENOENT' ? 'not installed (apt install v4l-utils)' : err.message.split('\n')[0]}` };
    }
  }
}

/** The CEC nodes of this box (`/dev/cec0`, …), sorted; none in a VM or a container. */
export function listCecDevices(devDir = '/dev'): string[] {
  try {
    return readdirSync(devDir)
      .filter((n) => /^cec\d+$/.test(n))
      .sort((a, b) => Number(a.slice(3)) - Number(b.slice(3)))
      .map((n) => path.join(devDir, n));
  } catch {
    return [];
  }
}
