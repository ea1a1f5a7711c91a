import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON to stdout (journald picks it up); secrets never reach the log. */
export function createLogger(opts: { level?: string; pretty?: boolean } = {}): Logger {
  return pino({
    level: opts.level ?? 'info',
    base: undefined,
    redact: {
      paths: ['password', '*.password', 'mqtt.password', 'key', '*.key', 'passphrase', '*.passphrase', 'authorization', '*.authorization'],
      censor: '[redacted]',
    },
    ...(opts.pretty ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } } : {}),
  });
}

/** A logger that drops everything: tests and the simulator use it. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
