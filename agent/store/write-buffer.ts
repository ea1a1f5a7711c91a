import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import type { AgentEvent } from '../core/types.js';
import type { PlayEnd, PlayStart, StoreHealth } from './store.js';

// What a store that cannot write (SQLITE_FULL on a full card, SQLITE_IOERR, a card remounted
// read-only) keeps in memory until it can (issue 14 item 2). Without it every play's record
// fails, the count never rises and the engine replays the spot at once; with it the play counts
// at once and is written, with its event, in order, when the store can write again.

/** SQLite result codes that mean "the file cannot take writes now", not "this write is wrong". */
const CANNOT_WRITE = new Set(['SQLITE_FULL', 'SQLITE_IOERR', 'SQLITE_READONLY', 'SQLITE_CANTOPEN']);

export function cannotWrite(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' && CANNOT_WRITE.has(code);
}

/** Writes waiting in memory are retried this often (and on every new write). */
const RETRY_MS = 5_000;

/** Events beyond this many waiting in memory drop the oldest event (plays are never dropped). */
export const MAX_PENDING_EVENTS = 1000;

export interface PendingPlay {
  kind: 'play';
  /** What recordPlayStart returned: a row id, or a negative handle while the start is unwritten. */
  handle: number;
  /** Set once the start row is written. */
  rowId?: number;
  start: PlayStart;
  end?: { end: PlayEnd; deviceId: string };
}

export type Pending = PendingPlay | { kind: 'event'; event: AgentEvent } | { kind: 'session'; value: number };

export interface WriteSink {
  /** Writes one item in one transaction; `end` is the play end as it was when the write began. */
  write(p: Pending, end: PendingPlay['end']): Promise<void>;
  /** The store can write again and nothing waits (the spell that ended). */
  recovered(spell: { error: string; since: number; droppedEvents: number }): Promise<void>;
  /** False once the store is closed. */
  open(): boolean;
  /** A write just failed (the store re-reads free space). */
  failing(): void;
}

/**
 * The FIFO of unwritten writes and the store's health. Written out in order, one transaction
 * each, on a retry timer and before every new write; stops at the first that cannot be written.
 */
export class WriteBuffer {
  readonly queue: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private retryTimer: TimerHandle | undefined;

  constructor(private readonly ctx: { clock: Clock; log: Logger; sink: WriteSink; lowMB: () => number | undefined }) {}
  /** Negative handle → row id, once a deferred start is written (the engine still holds the handle). */
  readonly aliases = new Map<number, number>();
  private nextHandle = -1;
  private failing: { error: string; since: number } | undefined;
  private droppedEvents = 0;

  newHandle(): number {
    return this.nextHandle--;
  }

  private push(p: Pending): void {
    this.queue.push(p);
    if (p.kind !== 'event') return;
    let events = this.queue.filter((x) => x.kind === 'event').length;
    while (events-- > MAX_PENDING_EVENTS) {
      this.queue.splice(this.queue.findIndex((x) => x.kind === 'event'), 1);
      this.droppedEvents++;
    }
  }

  playOf(handle: number): PendingPlay | undefined {
    return this.queue.find((p): p is PendingPlay => p.kind === 'play' && (p.handle === handle || (p.rowId !== undefined && p.rowId === handle)));
  }

  plays(): PendingPlay[] {
    return this.queue.filter((p): p is PendingPlay => p.kind === 'play');
  }

  /** A write failed because the store cannot write: note it and retry later. */
  failed(e: unknown): void {
    if (!this.failing) this.ctx.log.error({ err: e }, 'store cannot write: keeping plays and events in memory until it can');
    this.failing = { error: `${(e as { code?: string }).code ?? 'error'}: ${(e as Error).message}`, since: this.failing?.since ?? this.ctx.clock.now() };
    this.armRetry();
    this.ctx.sink.failing();
  }

  /** Adds `p` and tries to write everything waiting. */
  enqueue(p: Pending): void {
    this.push(p);
    void this.flush();
  }

  flush(): Promise<void> {
    this.flushing ??= this.drain().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  stop(): void {
    this.retryTimer?.cancel();
    this.retryTimer = undefined;
  }

  health(): StoreHealth {
    const low = this.ctx.lowMB();
    const state = this.failing || this.queue.length > 0 ? 'full' : low !== undefined ? 'degraded' : 'ok';
    return {
      state,
      pending: this.queue.length,
      ...(this.failing ? { lastError: this.failing.error, since: new Date(this.failing.since).toISOString() } : {}),
      ...(low !== undefined ? { freeMB: low } : {}),
    };
  }

  private armRetry(): void {
    if (this.retryTimer || !this.ctx.sink.open()) return;
    this.retryTimer = this.ctx.clock.setTimer(RETRY_MS, () => {
      this.retryTimer = undefined;
      void this.flush();
    });
  }

  private async drain(): Promise<void> {
    while (this.ctx.sink.open() && this.queue.length > 0) {
      const p = this.queue[0]!;
      // An end attached while its start is being written is written on the next pass.
      const end = p.kind === 'play' ? p.end : undefined;
      try {
        await this.ctx.sink.write(p, end);
      } catch (e) {
        if (cannotWrite(e)) {
          this.failed(e);
          return;
        }
        this.ctx.log.error({ err: e, kind: p.kind }, 'a deferred write failed for good; dropped');
        this.queue.shift();
        continue;
      }
      if (p.kind === 'play' && p.end && !end) continue;
      this.queue.shift();
    }
    if (this.queue.length > 0 || !this.failing) return;
    const spell = { ...this.failing, droppedEvents: this.droppedEvents };
    this.failing = undefined;
    this.droppedEvents = 0;
    this.ctx.log.warn(spell, 'store can write again: every play kept in memory is written');
    await this.ctx.sink.recovered(spell).catch(() => undefined);
  }
}
