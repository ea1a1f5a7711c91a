import type { Logger } from '../log.js';
import type { BatchStats } from '../archive/writes.js';
import type { Item } from './decode.js';

/** One message waiting for the archive: its item (none for a dropped one) and its PUBACK (QoS 1). */
export interface Pending {
  item?: Item;
  ack?: () => void;
}

export interface BatchOptions {
  maxRows: number;
  maxDelayMs: number;
}

/** What a batch of messages gives the archive: the items of those that decoded. */
const itemsOf = (pendings: readonly Pending[]): Item[] => pendings.flatMap((p) => (p.item ? [p.item] : []));

/** QoS 0 heartbeats beyond this many waiting are dropped (QoS 1 is bounded by Receive Maximum). */
const MAX_WAITING = 20_000;

/**
 * Group commit: messages wait until `maxRows` are waiting or the oldest has waited `maxDelayMs`,
 * then go to the archive in one transaction; their PUBACKs follow the commit, in arrival order.
 * A failed write is retried (1 s, doubling to 30 s) and nothing of it is acked meanwhile.
 */
export class Batcher {
  private queue: Pending[] = [];
  /** When each waiting message arrived (parallel to `queue`): the oldest one's age is what is due. */
  private arrived: number[] = [];
  private timer: NodeJS.Timeout | undefined;
  private roomWaiters: Array<{ n: number; resolve: () => void }> = [];
  private writing: Promise<void> | undefined;
  private retryMs = 0;
  /** The batch after the one being written, fixed early for the archive's head start (`next`). */
  private upcoming: { pendings: Pending[]; items: Item[] } | undefined;
  readonly totals = { batches: 0, rows: 0, plays: 0, duplicates: 0, dropped: 0, failures: 0 };

  constructor(
    /** `next`: the items of the batch that will follow this one, if it is already full (see flush). */
    private readonly write: (items: Item[], next: () => Item[] | undefined) => Promise<BatchStats>,
    private readonly opts: BatchOptions,
    private readonly log: Logger,
  ) {}

  get waiting(): number {
    return this.queue.length;
  }

  /** Resolves once fewer than `n` messages wait (after a commit takes some away). */
  whenBelow(n: number): Promise<void> {
    if (this.queue.length < n) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push({ n, resolve }));
  }

  private wakeRoomWaiters(): void {
    if (this.roomWaiters.length === 0) return;
    const still: typeof this.roomWaiters = [];
    for (const w of this.roomWaiters) {
      if (this.queue.length < w.n) w.resolve();
      else still.push(w);
    }
    this.roomWaiters = still;
  }

  add(p: Pending): void {
    if (!p.ack && this.queue.length >= MAX_WAITING) { this.totals.dropped++; return; }
    this.queue.push(p);
    this.arrived.push(Date.now());
    this.schedule();
  }

  /** Writes and acks everything waiting (stop). */
  async drain(): Promise<void> {
    while (this.queue.length > 0 || this.writing) {
      if (this.writing) await this.writing;
      else await this.flush();
    }
    clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.writing || this.queue.length === 0) return;
    // A full batch goes now: it is not held for its first message's maxDelayMs (it once was, 50 ms
    // a batch under load), nor, after a commit, behind that commit's acks (acking lets the broker
    // send the next messages, and the archive would sit idle while this loop parses them). A
    // retry's wait stands.
    if (this.queue.length >= this.opts.maxRows && this.retryMs === 0) {
      void this.flush();
      return;
    }
    if (this.timer) return;
    const due = Math.max(this.retryMs, (this.arrived[0] ?? Date.now()) + this.opts.maxDelayMs - Date.now(), 0);
    this.timer = setTimeout(() => { this.timer = undefined; void this.flush(); }, due);
  }

  private flush(): Promise<void> {
    if (this.writing || this.queue.length === 0) return this.writing ?? Promise.resolve();
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.queue.slice(0, this.opts.maxRows);
    // The batch the last write fixed as its next one, if this is it: the same array goes to the
    // archive, which built its INSERT ahead for exactly that array. It is, unless that write failed:
    // the queue only ever loses its front, a written batch's, so the fixed batch is then the front.
    const fixed = this.upcoming;
    this.upcoming = undefined;
    const items = fixed && fixed.pendings[0] === batch[0] && fixed.pendings.length === batch.length ? fixed.items : itemsOf(batch);
    // Asked by the archive while this batch commits: a full batch waiting behind it is fixed now.
    const next = (): Item[] | undefined => {
      if (this.upcoming) return this.upcoming.items;
      const pendings = this.queue.slice(batch.length, batch.length + this.opts.maxRows);
      if (pendings.length < this.opts.maxRows) return undefined;
      this.upcoming = { pendings, items: itemsOf(pendings) };
      return this.upcoming.items;
    };
    // The body starts a microtask later: a batch of only refused messages has nothing to await, and
    // an async body that ran to its `finally` at once would clear `writing` before this assignment
    // set it, leaving a settled promise there that blocks every later flush (the ingest stalled;
    // found twice, by the NOC page's tests and the PostgreSQL ones; fleet-batcher.test.ts).
    this.writing = Promise.resolve().then(async () => {
      const mine = this.writing;
      try {
        const stats = items.length > 0 ? await this.write(items, next) : undefined;
        this.queue.splice(0, batch.length);
        // What arrived during the write has been waiting since then, not since the commit: a full
        // or overdue batch goes at once (resetting the clock here idled the archive 50 ms a batch).
        this.arrived.splice(0, batch.length);
        this.retryMs = 0;
        this.totals.batches++;
        this.totals.rows += items.length;
        this.totals.plays += stats?.plays ?? 0;
        this.totals.duplicates += stats?.duplicates ?? 0;
        this.writing = undefined;
        this.schedule(); // before the acks (see schedule)
        for (const p of batch) p.ack?.();
        this.wakeRoomWaiters();
        if (stats && (stats.gapsOpened || stats.storesReplaced)) this.log.info({ gapsOpened: stats.gapsOpened, storesReplaced: stats.storesReplaced }, 'seq gap or replaced store');
        this.log.debug({ rows: items.length, ...stats }, 'batch committed');
      } catch (e) {
        this.totals.failures++;
        // Another ingest process held the write lock past the busy timeout: try again soon. Anything
        // else (a full disk, an I/O error) backs off, 1 s doubling to 30 s.
        const busy = (e as { code?: string }).code === 'SQLITE_BUSY';
        this.retryMs = busy ? 100 : Math.min(30_000, Math.max(1000, this.retryMs * 2));
        this.log.error({ err: (e as Error).message, rows: items.length, retryMs: this.retryMs }, 'archive write failed; nothing acked, retrying');
      } finally {
        if (this.writing === mine) this.writing = undefined;
        this.schedule();
      }
    });
    return this.writing;
  }
}
