import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON lines to stdout; each component takes a child (`log.child({ component })`). */
export function createLogger(level = 'info'): Logger {
  return pino({ level, base: undefined, redact: { paths: ['password', '*.password'], censor: '[redacted]' } });
}

/** Drops everything: tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
