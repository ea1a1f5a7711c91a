import type { Logger } from '../core/log.js';

/** Runs a caller's handler so that its throw is logged instead of unwinding mpv's event handling. */
export function guarded(log: Logger, fn: () => void): void {
  try {
    fn();
  } catch (e) {
    log.error({ err: e }, 'player handler threw');
  }
}
