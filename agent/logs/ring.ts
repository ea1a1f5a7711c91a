// The agent's recent log lines, in memory only (issue 13 item 5): the NOC reads a screen's logs
// through the `logs` command without a site visit, and nothing more reaches the SD card. The
// ring is a second pino destination next to stdout, so it holds the lines exactly as journald
// gets them: already serialised, so already redacted.

/** pino's numeric levels by name. */
export const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;
export type LevelName = keyof typeof LEVELS;

export function isLevelName(s: unknown): s is LevelName {
  return typeof s === 'string' && Object.hasOwn(LEVELS, s);
}

export interface RingLine {
  /** Rises by one per line written, from 1; the `cursor` of the logs command. */
  seq: number;
  /** pino's `time` (epoch ms). */
  time: number;
  level: number;
  /** The JSON line without its newline. */
  text: string;
}

/** What a line costs besides its text: the object, its fields, its slot in the array. */
const LINE_OVERHEAD = 64;
/** Longer lines are replaced by a short one saying so: one line never takes the ring or a page. */
export const MAX_LINE_BYTES = 16 * 1024;

export interface RingQuery {
  /** Lines at or after this instant (epoch ms). */
  since?: number;
  /** At least this level (pino's number). */
  minLevel?: number;
  /** Lines from this seq on, oldest first; without it, the last `lines` that match. */
  cursor?: number;
  /** At most this many lines. */
  lines?: number;
}

export interface RingSelection {
  lines: RingLine[];
  /** With a cursor older than the oldest line kept: how many lines were overwritten in between. */
  skipped: number;
  /** The seq the next line written will have. */
  nextSeq: number;
}

/**
 * A FIFO of lines bounded by bytes (text + a fixed overhead per line): the oldest go first.
 * `write` is the pino destination interface (one call per serialised line).
 */
export class LogRing {
  private buf: Array<RingLine & { cost: number }> = [];
  /** Index of the oldest live line in `buf` (dropped lines are compacted away in batches). */
  private head = 0;
  private bytes = 0;
  private seq = 1;
  readonly stats = { written: 0, evicted: 0, clipped: 0 };

  constructor(readonly maxBytes: number, private readonly now: () => number = Date.now) {}

  get size(): number {
    return this.buf.length - this.head;
  }

  get usedBytes(): number {
    return this.bytes;
  }

  write(chunk: string): void {
    for (const raw of chunk.split('\n')) if (raw.length > 0) this.push(raw);
  }

  private push(raw: string): void {
    let text = raw;
    const m = /^\{"level":(\d+),"time":(\d+)/.exec(text);
    const level = m ? Number(m[1]) : LEVELS.info;
    const time = m ? Number(m[2]) : this.now();
    let cost = Buffer.byteLength(text) + LINE_OVERHEAD;
    if (cost - LINE_OVERHEAD > MAX_LINE_BYTES) {
      this.stats.clipped++;
      text = JSON.stringify({ level, time, msg: `[log line of ${cost - LINE_OVERHEAD} bytes not kept in the ring]`, head: text.slice(0, 512) });
      cost = Buffer.byteLength(text) + LINE_OVERHEAD;
    }
    this.stats.written++;
    if (cost > this.maxBytes) return;
    this.buf.push({ seq: this.seq++, time, level, text, cost });
    this.bytes += cost;
    while (this.bytes > this.maxBytes && this.head < this.buf.length) {
      const old = this.buf[this.head]!;
      this.bytes -= old.cost;
      this.head++;
      this.stats.evicted++;
    }
    // Compact once the dead prefix is as long as the live part: amortised O(1) per line.
    if (this.head > 1024 && this.head * 2 > this.buf.length) {
      this.buf = this.buf.slice(this.head);
      this.head = 0;
    }
  }

  /** The lines that match, oldest first. */
  select(q: RingQuery = {}): RingSelection {
    const minLevel = q.minLevel ?? 0;
    const since = q.since ?? -Infinity;
    const limit = q.lines ?? Infinity;
    const match = (l: RingLine): boolean => l.level >= minLevel && l.time >= since;
    const out: RingLine[] = [];
    const oldest = this.head < this.buf.length ? this.buf[this.head]!.seq : this.seq;
    if (q.cursor !== undefined) {
      // seqs are consecutive, so the cursor's line is found by arithmetic.
      const from = Math.max(this.head, this.head + (q.cursor - oldest));
      for (let i = from; i < this.buf.length && out.length < limit; i++) if (match(this.buf[i]!)) out.push(this.buf[i]!);
      return { lines: out, skipped: Math.max(0, oldest - q.cursor), nextSeq: this.seq };
    }
    for (let i = this.buf.length - 1; i >= this.head && out.length < limit; i--) if (match(this.buf[i]!)) out.push(this.buf[i]!);
    out.reverse();
    return { lines: out, skipped: 0, nextSeq: this.seq };
  }
}
