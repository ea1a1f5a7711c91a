import { z } from 'zod';
import type { LogLevelControl, LevelState } from './level.js';
import { MAX_LEVEL_SEC } from './level.js';
import { packPage } from './page.js';
import { LEVELS, type LevelName, type LogRing } from './ring.js';

// The two commands over the ring and the level control (issue 13 item 5). Args are checked
// here, each wrong one named, like every §7 handler's; the answers are the `result` objects.

const levelSchema = z.enum(Object.keys(LEVELS) as [LevelName, ...LevelName[]]);

/** Default and most lines of one `logs` request (the pages of one answer hold them all). */
export const DEFAULT_LINES = 1000;
export const MAX_LINES = 100_000;

const logsArgs = z.strictObject({
  // Every inbound timestamp carries Z or an offset (PROTOCOL §5 v1.1).
  since: z.iso.datetime({ offset: true }).optional(),
  level: levelSchema.optional(),
  lines: z.number().int().min(1).max(MAX_LINES).optional(),
  cursor: z.number().int().min(1).optional(),
});

const levelArgs = z.strictObject({
  level: levelSchema,
  expiresInSec: z.number().int().min(1).max(MAX_LEVEL_SEC).optional(),
});

export interface LogsPage extends LevelState {
  /** gzip, then base64, of the lines (pino JSON, oldest first) joined by '\n'. */
  encoding: 'gzip+base64';
  data: string;
  count: number;
  /** Ask again with this cursor (and the same filters) for the next page, or for newer lines. */
  cursor: number;
  /** More of the lines asked for are waiting: ask again at once with `cursor`. */
  more: boolean;
  /** Lines overwritten in the ring between the cursor asked for and the oldest one kept. */
  skipped: number;
  ring: { lines: number; bytes: number; maxBytes: number };
}

function argsOf<T>(schema: z.ZodType<T>, a: Record<string, unknown>): T {
  const r = schema.safeParse(a);
  if (r.success) return r.data;
  throw new Error(r.error.issues.map((i) => `args${i.path.length ? '.' + i.path.join('.') : ''}: ${i.message}`).join('; '));
}

export class LogService {
  /** `ring`: none when config logs.ringKB is 0 (then `logs` says so; `log-level` still works). */
  constructor(private readonly ring: LogRing | undefined, private readonly level: LogLevelControl) {}

  async start(): Promise<void> {
    await this.level.start();
  }

  /** Ends a level change in force (the expiry timer with it). */
  async stop(): Promise<void> {
    await this.level.stop();
  }

  async logs(a: Record<string, unknown>): Promise<LogsPage> {
    const q = argsOf(logsArgs, a);
    const ring = this.ring;
    if (!ring) throw new Error('this agent keeps no log lines in memory (config logs.ringKB is 0)');
    const sel = ring.select({
      ...(q.since !== undefined ? { since: Date.parse(q.since) } : {}),
      ...(q.level !== undefined ? { minLevel: LEVELS[q.level] } : {}),
      ...(q.cursor !== undefined ? { cursor: q.cursor } : {}),
      lines: q.lines ?? (q.cursor !== undefined ? MAX_LINES : DEFAULT_LINES),
    });
    const page = await packPage(sel.lines);
    const more = page.count < sel.lines.length;
    const next = more ? sel.lines[page.count]!.seq : sel.nextSeq;
    return {
      encoding: 'gzip+base64',
      data: page.gz.toString('base64'),
      count: page.count,
      cursor: next,
      more,
      skipped: sel.skipped,
      ...this.level.state(),
      ring: { lines: ring.size, bytes: ring.usedBytes, maxBytes: ring.maxBytes },
    };
  }

  logLevel(a: Record<string, unknown>): LevelState {
    const q = argsOf(levelArgs, a);
    return this.level.set(q.level, q.expiresInSec);
  }
}
