import { stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import type { MediaRef } from '../core/types.js';
import { extensionOf } from './index-file.js';
import { backoffDelay, RARE_BACKOFF, TRANSIENT_BACKOFF } from './policy.js';
import type { Lookup, SourcePolicy } from './sources.js';
import { transfer, TransferError } from './transfer.js';

export interface MediaFailure {
  sha256: string;
  url: string;
  reason: string;
  attempts: number;
  nextRetryAt: number;
}

/** A file a transfer put in place under its sha256, hashed and matching. */
export interface Downloaded {
  sha256: string;
  name: string;
  size: number;
  url: string;
  /** The reason of the attempt before, if one failed. */
  after: string | undefined;
}

export interface DownloadsContext {
  dir: string;
  maxBytes: number;
  clock: Clock;
  log: Logger;
  fetchImpl: typeof fetch;
  sources: SourcePolicy;
  lookup?: Lookup;
  concurrency: number;
  /** The cache is stopping: start nothing, schedule no retry. */
  stopped(): boolean;
  /** A transfer learned its size: make room for what it adds to the `.part` file. */
  makeRoom(sha256: string, bytes: number): Promise<void>;
  /** mpv's length of a cached file; null when mpv found none; undefined when cut short by the abort. */
  probe(name: string, signal: AbortSignal): Promise<number | null | undefined>;
  /** Probed, before it is announced, so the first plan that can use it already has its length. */
  onDownloaded(d: Downloaded, probed: number | null | undefined): void;
  /** What an attempt that ended without the file left of its `.part` file (undefined: none). */
  onPartLeft(sha256: string, bytes: number | undefined): void;
  /** An attempt failed for a reason not reported before: the `media-failed` event. */
  onFailed(ref: MediaRef, reason: string): void;
}

interface Job {
  ref: MediaRef;
  state: 'queued' | 'downloading' | 'waiting';
  transientFailures: number;
  rareFailures: number;
  reason?: string;
  reported?: string;
  /** The last attempt was refused for want of room: worth trying again as soon as the plan shrinks. */
  noRoom?: boolean;
  nextRetryAt: number;
  retry?: TimerHandle;
  abort?: AbortController;
}

/**
 * The wanted media not in the cache, fetched `concurrency` at a time with a backoff per kind of
 * failure (policy.ts); a failure is reported once per distinct reason, not on every retry.
 */
export class Downloads {
  private readonly jobs = new Map<string, Job>();
  private readonly running = new Set<Promise<void>>();
  /** sha256s with a transfer still running (possibly aborted, not yet unwound): one writer per .part file. */
  private readonly busy = new Set<string>();
  private active = 0;
  private open = false;

  constructor(private readonly ctx: DownloadsContext) {}

  /** Downloads may run from now on; those already found in the cache are dropped. */
  start(inCache: (sha256: string) => boolean): void {
    for (const sha of this.jobs.keys()) if (inCache(sha)) this.jobs.delete(sha);
    this.open = true;
    this.pump();
  }

  /** Aborts downloads (their partial files stay for a resume); resolves once they unwound. */
  async stop(): Promise<void> {
    for (const job of this.jobs.values()) {
      job.retry?.cancel();
      job.abort?.abort();
    }
    await Promise.allSettled([...this.running]);
  }

  /** Exactly these are wanted (by lower-case sha256): others are dropped, missing ones queued. `freed`: cached media left the plan. */
  want(wanted: Map<string, MediaRef>, inCache: (sha256: string) => boolean, freed = false): void {
    let dropped = freed;
    for (const [sha, job] of this.jobs) {
      if (wanted.has(sha)) continue;
      job.retry?.cancel();
      job.abort?.abort();
      this.jobs.delete(sha);
      dropped = true;
    }
    // Media dropped from the plan may have freed the room another file was refused for.
    if (dropped) for (const job of this.jobs.values()) if (job.noRoom && job.state === 'waiting') this.requeue(job);
    for (const [sha, ref] of wanted) {
      if (inCache(sha)) continue;
      const job = this.jobs.get(sha);
      if (!job) {
        this.jobs.set(sha, { ref: { ...ref, sha256: sha }, state: 'queued', transientFailures: 0, rareFailures: 0, nextRetryAt: 0 });
      } else if (job.ref.url !== ref.url) {
        // A new source deserves a fresh try, not the old source's backoff.
        job.ref = { ...ref, sha256: sha };
        job.transientFailures = job.rareFailures = 0;
        if (job.state === 'waiting') this.requeue(job);
      }
    }
    this.pump();
  }

  /** Fetch `ref` (again) unless it is already queued; `reason` is why, already reported. */
  fetchAgain(ref: MediaRef, reason?: string): void {
    const sha = ref.sha256;
    if (this.jobs.has(sha)) return;
    const job: Job = { ref, state: 'queued', transientFailures: 0, rareFailures: 0, nextRetryAt: 0 };
    if (reason !== undefined) job.reason = job.reported = reason;
    this.jobs.set(sha, job);
    this.pump();
  }

  /** Queued, downloading or waiting to retry, or a transfer still unwinding: its files must stay. */
  holds(sha256: string): boolean {
    return this.jobs.has(sha256) || this.busy.has(sha256);
  }

  counts(): { downloading: number; failed: number } {
    const failed = [...this.jobs.values()].filter((j) => j.reason !== undefined && j.state !== 'downloading').length;
    return { downloading: this.active, failed };
  }

  /** Wanted media that is not verified because its last attempt failed (for `status`/`report` commands). */
  failures(): MediaFailure[] {
    return [...this.jobs.values()]
      .filter((j) => j.reason !== undefined)
      .map((j) => ({ sha256: j.ref.sha256, url: j.ref.url, reason: j.reason!, attempts: j.transientFailures + j.rareFailures, nextRetryAt: j.nextRetryAt }));
  }

  private pump(): void {
    if (!this.open || this.ctx.stopped()) return;
    for (const job of this.jobs.values()) {
      if (this.active >= this.ctx.concurrency) return;
      if (job.state === 'queued' && !this.busy.has(job.ref.sha256)) this.run(job);
    }
  }

  private run(job: Job): void {
    const sha = job.ref.sha256;
    const abort = new AbortController();
    job.state = 'downloading';
    job.abort = abort;
    this.active++;
    this.busy.add(sha);
    const name = sha + extensionOf(job.ref.url);
    const p = transfer({
      url: job.ref.url,
      sha256: sha,
      partPath: path.join(this.ctx.dir, `${sha}.part`),
      finalPath: path.join(this.ctx.dir, name),
      maxBytes: this.ctx.maxBytes,
      fetchImpl: this.ctx.fetchImpl,
      sources: this.ctx.sources,
      ...(this.ctx.lookup ? { lookup: this.ctx.lookup } : {}),
      clock: this.ctx.clock,
      signal: abort.signal,
      onSize: (bytes) => this.ctx.makeRoom(sha, bytes),
    })
      .then(
        async (size) => {
          const probed = await this.ctx.probe(name, abort.signal);
          this.active--;
          if (this.jobs.get(sha) === job) this.jobs.delete(sha);
          this.ctx.onDownloaded({ sha256: sha, name, size, url: job.ref.url, after: job.reason }, probed);
        },
        (e: unknown) => {
          this.active--;
          return this.failed(job, e, abort.signal.aborted);
        },
      )
      .finally(() => {
        this.busy.delete(sha);
        this.running.delete(p);
        job.abort = undefined;
        this.pump();
      });
    this.running.add(p);
  }

  private async failed(job: Job, e: unknown, aborted: boolean): Promise<void> {
    const sha = job.ref.sha256;
    const part = path.join(this.ctx.dir, `${sha}.part`);
    // Refused for want of room: what it wrote so far is exactly what must not stay.
    if (e instanceof TransferError && e.noRoom) await unlink(part).catch(() => undefined);
    const partSize = await stat(part).then((s) => s.size, () => undefined);
    this.ctx.onPartLeft(sha, partSize);
    if (aborted || this.ctx.stopped() || this.jobs.get(sha) !== job) return; // no longer wanted, or shutting down
    const err = e instanceof TransferError ? e : new TransferError((e as Error)?.message ?? String(e), 'transient');
    let delay: number;
    if (err.kind === 'restart') {
      delay = 0;
    } else if (err.kind === 'rare') {
      delay = backoffDelay(RARE_BACKOFF, job.rareFailures++);
    } else {
      delay = backoffDelay(TRANSIENT_BACKOFF, job.transientFailures++);
    }
    job.state = 'waiting';
    job.nextRetryAt = this.ctx.clock.now() + delay;
    job.noRoom = err.noRoom;
    if (err.kind !== 'restart') {
      job.reason = err.message;
      // The detail (errno, resolved address, hash got) stays on the box: see COULD_NOT_FETCH.
      this.ctx.log.warn({ sha256: sha, url: job.ref.url, reason: err.message, detail: err.detail, retryInMs: delay }, 'media download failed');
      if (job.reported !== err.message) {
        job.reported = err.message;
        this.ctx.onFailed(job.ref, err.message);
      }
    }
    job.retry = this.ctx.clock.setTimer(delay, () => this.requeue(job));
  }

  private requeue(job: Job): void {
    job.retry?.cancel();
    job.retry = undefined;
    if (this.jobs.get(job.ref.sha256) !== job || job.state !== 'waiting') return;
    job.state = 'queued';
    this.pump();
  }
}
