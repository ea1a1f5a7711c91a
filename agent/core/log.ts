import { pino, type Logger } from 'pino';

export type { Logger };

/** A second place every serialised line goes (the log ring, agent/logs/ring.ts). */
export interface LineSink {
  write(line: string): void;
}

/**
 * JSON to stdout (journald picks it up); secrets never reach the log. With `tee`, each line
 * also goes there, exactly as written to stdout: redaction happens when the line is serialised,
 * before either destination sees it, and the logger's level gates both alike.
 */
export function createLogger(opts: { level?: string; pretty?: boolean; tee?: LineSink; /** false: to `tee` only (tests). */ stdout?: boolean } = {}): Logger {
  const options = {
    level: opts.level ?? 'info',
    base: undefined,
    redact: {
      paths: ['password', '*.password', 'mqtt.password', 'key', '*.key', 'passphrase', '*.passphrase', 'authorization', '*.authorization'],
      censor: '[redacted]',
    },
  };
  const pretty = { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } };
  if (!opts.tee) return pino({ ...options, ...(opts.pretty ? { transport: pretty } : {}) });
  if (opts.stdout === false) return pino(options, opts.tee);
  const stdout = opts.pretty ? pino.transport(pretty) : pino.destination({ dest: 1 });
  // Each stream at the lowest level: the logger's own level is the one filter.
  return pino(options, pino.multistream([
    { level: 'trace', stream: stdout },
    { level: 'trace', stream: opts.tee },
  ]));
}

/** A logger that drops everything: tests and the simulator use it. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
