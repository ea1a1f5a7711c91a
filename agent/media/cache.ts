import { existsSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import path from 'node:path';
import type { MediaRef } from '../core/types.js';
import type { Clip } from '../core/clip.js';
import { Downloads, type Downloaded, type MediaFailure } from './downloads.js';
import { type CachedFile, checkFiles, scanCacheDir } from './index-file.js';
import type { MediaCacheCtx } from './cache-ctx.js';
import { IndexWriter } from './index-writer.js';
import { pinnedFetch } from './pinned-fetch.js';
import { evictionOrder, learnedLengthFits, lengthOf, mb, planNeed } from './policy.js';
import { probeDuration } from './probe.js';
import { Rechecker, type RecheckResult } from './recheck.js';
import { checkFreeSpace } from './room.js';
import { TransferError } from './transfer.js';

export type { MediaCacheCtx, MediaCacheEvents } from './cache-ctx.js';

const LAST_USED_PERSIST_MS = 3_600_000;

/**
 * Content-addressed media cache (PROTOCOL §4): files are named by their sha256, only a file
 * whose content hashes to its name is ever handed to the player, and media the plan in
 * force wants is never evicted. See index-file.ts for the directory layout.
 */
export class MediaCache {
  private files = new Map<string, CachedFile>();
  private parts = new Map<string, number>();
  /** Sizes that downloads in progress announced (their `.part` files will grow to that). */
  private readonly announced = new Map<string, number>();
  /** What the plan in force wants, by sha256: pinned against eviction, and the URLs to fetch again. */
  private pinned = new Map<string, MediaRef>();
  private readonly downloads: Downloads;
  private started = false;
  private stopped = false;
  private readonly index: IndexWriter;
  private evicting: Promise<void> = Promise.resolve();
  private warnedTooSmall = false;
  private readonly recheck: Rechecker;
  private readonly lifetime = new AbortController();

  constructor(private readonly ctx: MediaCacheCtx) {
    this.index = new IndexWriter({
      dir: ctx.dir,
      clock: ctx.clock,
      log: ctx.log,
      files: () => this.files.values(),
      live: () => this.started && !this.stopped,
    });
    this.downloads = new Downloads({
      dir: ctx.dir,
      maxBytes: ctx.maxBytes,
      clock: ctx.clock,
      log: ctx.log,
      fetchImpl: ctx.fetchImpl ?? pinnedFetch(ctx.sources, ctx.lookup),
      sources: ctx.sources,
      ...(ctx.lookup ? { lookup: ctx.lookup } : {}),
      concurrency: ctx.concurrency ?? 2,
      stopped: () => this.stopped,
      makeRoom: (sha, bytes) => this.makeRoom(sha, bytes),
      probe: (name, signal) => this.probe(name, signal),
      onDownloaded: (d, probed) => this.verified(d, probed),
      onPartLeft: (sha, bytes) => {
        this.announced.delete(sha);
        if (bytes === undefined) this.parts.delete(sha);
        else this.parts.set(sha, bytes);
      },
      onFailed: (ref, reason) => this.ctx.events?.onFailed?.(ref, reason),
    });
    this.recheck = new Rechecker(
      {
        files: () => this.files,
        pinned: (sha) => this.pinned.has(sha),
        pathOf: (f) => path.join(this.ctx.dir, f.name),
        onResult: (f, r, first) => this.onRechecked(f, r, first),
      },
      { clock: ctx.clock, log: ctx.log, ...(ctx.recheckEveryMs !== undefined ? { everyMs: ctx.recheckEveryMs } : {}) },
    );
  }

  /** Scans the directory (deleting temp leftovers), then starts any downloads already wanted. */
  async start(): Promise<void> {
    const scan = await scanCacheDir(this.ctx.dir, this.ctx.clock.now(), this.ctx.log);
    this.files = scan.files;
    this.parts = scan.parts;
    this.started = true;
    this.ctx.log.info({ dir: this.ctx.dir, ...this.status(), partial: this.parts.size, removed: scan.removed.length }, 'media cache ready');
    if (scan.removed.length > 0) this.index.markDirty();
    this.downloads.start((sha) => this.files.has(sha));
    this.evictSoon();
    this.recheck.start();
  }

  /** Aborts downloads (their partial files stay for a resume) and writes the index. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.lifetime.abort();
    await this.recheck.stop();
    await this.downloads.stop();
    await this.evicting;
    this.index.cancel();
    if (this.started) await this.index.flush();
  }

  /** The media the plan in force needs. Starts downloads of missing ones; pins these against eviction. */
  want(refs: MediaRef[]): void {
    const wanted = new Map(refs.map((r) => [r.sha256.toLowerCase(), r] as const));
    const freed = [...this.pinned.keys()].some((s) => !wanted.has(s));
    this.pinned = wanted;
    this.downloads.want(wanted, (sha) => this.files.has(sha), freed);
    this.evictSoon();
  }

  /**
   * A verified local clip, or undefined while it is missing/downloading/failed, or not yet
   * re-hashed since this process started (then it is hashed next). Touches the LRU.
   */
  resolve(ref: MediaRef): Clip | undefined {
    const sha = ref.sha256.toLowerCase();
    const f = this.files.get(sha);
    if (!f) return undefined;
    if (!this.recheck.isChecked(sha)) {
      this.recheck.urge(sha);
      return undefined;
    }
    const file = path.join(this.ctx.dir, f.name);
    // One stat per call: an operator (following doctor's advice) or a failing disk may have
    // removed the file; hand mpv nothing rather than a missing path, and fetch it again.
    if (!existsSync(file)) {
      this.ctx.log.warn({ file: f.name }, 'media file vanished from the cache');
      this.files.delete(sha);
      this.index.markDirty();
      if (this.pinned.has(sha)) this.downloads.fetchAgain({ ...ref, sha256: sha });
      return undefined;
    }
    const prev = f.lastUsed;
    f.lastUsed = this.ctx.clock.now();
    // lastUsed on disk only orders eviction after a restart: an hour's precision is plenty, and
    // rewriting index.json for every loop item was most of an idle screen's SD writes (issue 8).
    if (Math.floor(prev / LAST_USED_PERSIST_MS) !== Math.floor(f.lastUsed / LAST_USED_PERSIST_MS)) this.index.markDirty();
    const clip: Clip = { path: file, sha256: f.sha256 };
    const d = lengthOf(f) ?? ref.durationMs;
    if (d !== undefined) clip.durationMs = d;
    return clip;
  }

  /**
   * The length a completed play measured; kept across restarts. The probed length stays
   * authoritative: a measure far from it (a wall-clock step mid-spot turned a 30 s spot into
   * 3,601,923 ms) is ignored and logged. Without a probed length (a still, an unprobeable
   * file) the measure is the only one there is and is kept.
   */
  setDuration(sha256: string, ms: number): void {
    const f = this.files.get(sha256.toLowerCase());
    if (!f || !Number.isFinite(ms) || ms <= 0 || f.durationMs === Math.round(ms)) return;
    if (typeof f.probedMs === 'number' && !learnedLengthFits(f.probedMs, ms)) {
      this.ctx.log.warn({ sha256: f.sha256, probedMs: f.probedMs, measuredMs: Math.round(ms) }, 'measured length far from the probed one; not learned');
      return;
    }
    f.durationMs = Math.round(ms);
    this.index.markDirty();
  }

  /** The clip's length for planning: mpv's probe of the file, else what plays measured. */
  duration(sha256: string): number | undefined {
    const f = this.files.get(sha256.toLowerCase());
    return f ? lengthOf(f) : undefined;
  }

  /** Resolves once every file found at start has been re-hashed (or the cache stopped). */
  rechecked(): Promise<void> {
    return this.recheck.idle();
  }

  status(): { files: number; bytes: number; downloading: number; failed: number } {
    let bytes = 0;
    for (const f of this.files.values()) bytes += f.size;
    for (const p of this.parts.values()) bytes += p;
    return { files: this.files.size, bytes, ...this.downloads.counts() };
  }

  /** Wanted media that is not verified because its last attempt failed (for `status`/`report` commands). */
  failures(): MediaFailure[] {
    return this.downloads.failures();
  }

  /**
   * Re-hashes every cached file and reports each one whose content does not match its name
   * (and index entries whose file vanished). Read-only, usable without start() (doctor).
   */
  async verifyAll(): Promise<string[]> {
    const { problems, names } = await checkFiles(this.ctx.dir);
    for (const f of this.files.values()) if (!names.includes(f.name)) problems.push(`${f.name}: in the index but missing on disk`);
    return problems;
  }

  /** mpv's length of a cached file; null when mpv found none; undefined when cut short by an abort. */
  private async probe(name: string, signal: AbortSignal): Promise<number | null | undefined> {
    const both = AbortSignal.any([signal, this.lifetime.signal]);
    const ms = await probeDuration(path.join(this.ctx.dir, name), {
      mpvPath: this.ctx.mpvPath ?? 'mpv',
      signal: both,
      ...(this.ctx.probeTimeoutMs !== undefined ? { timeoutMs: this.ctx.probeTimeoutMs } : {}),
    });
    if (both.aborted) return undefined;
    return ms ?? null;
  }

  private async onRechecked(f: CachedFile, r: RecheckResult, first: boolean): Promise<void> {
    const sha = f.sha256;
    if (r.ok) {
      // A file from an older index was never probed: do it now, before it is announced.
      if (f.probedMs === undefined) {
        const probed = await this.probe(f.name, this.lifetime.signal);
        if (probed !== undefined) {
          f.probedMs = probed;
          this.index.markDirty();
        }
      }
      if (first && !this.stopped) this.ctx.events?.onVerified?.(sha);
      return;
    }
    // Never played again, nor reported under a hash it no longer has: gone, and fetched again.
    this.files.delete(sha);
    this.index.markDirty();
    if (!r.gone) await unlink(path.join(this.ctx.dir, f.name)).catch(() => undefined);
    const wanted = this.pinned.get(sha);
    const ref: MediaRef = wanted ?? { url: f.url ?? '', sha256: sha };
    if (!r.gone) this.ctx.events?.onFailed?.(ref, r.reason);
    if (wanted) this.downloads.fetchAgain({ ...wanted, sha256: sha }, r.reason);
  }

  private verified(d: Downloaded, probed: number | null | undefined): void {
    const sha = d.sha256;
    const f: CachedFile = { sha256: sha, name: d.name, size: d.size, lastUsed: this.ctx.clock.now(), url: d.url };
    if (probed !== undefined) f.probedMs = probed;
    this.files.set(sha, f);
    this.recheck.markChecked(sha);
    this.parts.delete(sha);
    this.announced.delete(sha);
    this.ctx.log.info({ sha256: sha, url: d.url, bytes: d.size, probedMs: probed, after: d.after }, 'media verified');
    this.index.markDirty();
    this.evictSoon();
    this.ctx.events?.onVerified?.(sha);
  }

  /**
   * A download announced its size: refuse it if the plan's media would then pass the cache size
   * (planNeed) or the disk's free-space floor, else evict what is not needed to make room.
   */
  private async makeRoom(sha: string, bytes: number): Promise<void> {
    const sizeOf = (s: string): { size: number; verified: boolean } | undefined => {
      const n = this.files.get(s)?.size ?? this.announced.get(s) ?? this.parts.get(s);
      return n === undefined ? undefined : { size: n, verified: this.files.has(s) };
    };
    const need = planNeed([...this.pinned.keys()], sha, bytes, sizeOf);
    if (need > this.ctx.maxBytes) throw new TransferError(`cache full: plan needs ${mb(need)} MB > cacheMaxMB ${mb(this.ctx.maxBytes, true)} MB`, 'rare', undefined, true);
    this.announced.set(sha, bytes);
    await this.evict(bytes - (this.parts.get(sha) ?? 0));
    await checkFreeSpace(this.ctx.dir, path.join(this.ctx.dir, `${sha}.part`), bytes, this.ctx.minFreeBytes ?? 0);
  }

  private evictSoon(): void {
    if (!this.started) return;
    this.evict(0).catch((e: unknown) => this.ctx.log.warn({ err: e }, 'media eviction failed'));
  }

  /**
   * Deletes least-recently-used files until everything plus `reserve` bytes fits in maxBytes.
   * Unwanted partial downloads go first, then unpinned files oldest first; pinned ones never.
   */
  private evict(reserve: number): Promise<void> {
    const next = this.evicting.then(async () => {
      let total = this.status().bytes + Math.max(0, reserve);
      if (total <= this.ctx.maxBytes) return;
      const keep = (sha: string): boolean => this.pinned.has(sha) || this.downloads.holds(sha);
      for (const v of evictionOrder(this.files.values(), this.parts, keep)) {
        if (total <= this.ctx.maxBytes) break;
        if (keep(v.sha256)) continue; // pinned by a want() while we were deleting
        if (v.kind === 'part') this.parts.delete(v.sha256);
        else {
          this.files.delete(v.sha256);
          this.recheck.forget(v.sha256);
        }
        total -= v.size;
        await unlink(path.join(this.ctx.dir, v.name)).catch(() => undefined);
        this.ctx.log.info({ file: v.name, bytes: v.size }, 'media evicted');
        this.index.markDirty();
      }
      if (total > this.ctx.maxBytes && !this.warnedTooSmall) {
        this.warnedTooSmall = true;
        this.ctx.log.warn({ needBytes: total, maxBytes: this.ctx.maxBytes }, 'media cache too small for the media the plan in force needs');
      }
    });
    this.evicting = next.catch(() => undefined);
    return next;
  }
}
