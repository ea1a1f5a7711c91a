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

/** The FIFO of unwritten writes and the store's health; the SqliteStore writes them out in order. */
export class WriteBuffer {
  readonly queue: Pending[] = [];
  /** Negative handle → row id, once a deferred start is written (the engine still holds the handle). */
  readonly aliases = new Map<number, number>();
  private nextHandle = -1;
  private failing: { error: string; since: number } | undefined;
  private low: { freeMB: number } | undefined;
  droppedEvents = 0;

  newHandle(): number {
    return this.nextHandle--;
  }

  push(p: Pending): void {
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

  /** A write failed because the store cannot write; true when this starts a failing spell. */
  failed(e: unknown, at: number): boolean {
    const first = !this.failing;
    this.failing = { error: `${(e as { code?: string }).code ?? 'error'}: ${(e as Error).message}`, since: this.failing?.since ?? at };
    return first;
  }

  /** Everything waiting was written; returns the spell that ended, if one did. */
  recovered(): { error: string; since: number } | undefined {
    const f = this.failing;
    this.failing = undefined;
    return f;
  }

  isFailing(): boolean {
    return this.failing !== undefined;
  }

  /** Free space under the floor (undefined = above it). */
  setLow(low: { freeMB: number } | undefined): void {
    this.low = low;
  }

  health(): StoreHealth {
    const state = this.failing || this.queue.length > 0 ? 'full' : this.low ? 'degraded' : 'ok';
    return {
      state,
      pending: this.queue.length,
      ...(this.failing ? { lastError: this.failing.error, since: new Date(this.failing.since).toISOString() } : {}),
      ...(this.low ? { freeMB: this.low.freeMB } : {}),
    };
  }
}
