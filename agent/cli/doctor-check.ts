import type { Config } from '../config/config.js';
import type { Logger } from '../core/log.js';

// What every doctor check takes and gives, apart from the checks themselves.

export type Level = 'ok' | 'warn' | 'fail' | 'skip';

export interface CheckResult {
  name: string;
  level: Level;
  detail: string;
  fix?: string;
}

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The program does not exist (ENOENT). */
  missing: boolean;
}

export type Exec = (cmd: string, args: string[], timeoutMs: number) => Promise<ExecResult>;

export interface DoctorContext {
  config: Config;
  log: Logger;
  out: (line: string) => void;
  /** Programs are run through this (tests may replace it). */
  exec?: Exec;
  sysfsRoot?: string;
  /** Where /dev/cec* nodes are looked for (tests); default /dev. */
  devDir?: string;
  /** A graphical session is running (main.ts knows from the environment); picks mpv's default output. */
  desktop?: boolean;
  mpvTimeoutMs?: number;
  brokerTimeoutMs?: number;
  /** Below this much free space in dataDir: a warning. */
  minFreeMB?: number;
  unitName?: string;
}
