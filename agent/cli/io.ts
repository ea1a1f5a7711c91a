import type { Logger } from '../core/log.js';

/** What main.ts hands a command: where its output goes and the logger it may use. */
export interface CliIo {
  out: (s: string) => void;
  log: Logger;
}
