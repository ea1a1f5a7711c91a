import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Clock } from '../core/clock.js';
import { fsyncDir } from '../fsx/atomic.js';
import { checkHttpTarget, openConfined, SourceRefused, type Lookup, type SourcePolicy } from './sources.js';

/**
 * The one reason a `media-failed` event gives for any failure to reach or hear from a server:
 * refused, timed out, unreachable, unresolvable or silent all look alike to whoever published
 * the URL, so a URL cannot be used to scan ports (the detail goes to the local log only).
 */
export const COULD_NOT_FETCH = 'could not fetch';
const MAX_REDIRECTS = 5;
/** Without a Content-Length, the cache is asked for room again every this many bytes. */
const GROWTH_STEP = 1 << 20;

/** Why a transfer failed, and how soon trying again makes sense. */
export class TransferError extends Error {
  constructor(
    message: string,
    /**
     * transient: network, 5xx, disk; rare: the server or file is wrong (hash, 4xx, too large);
     * restart: a resume went wrong and the partial file is gone, so try again from zero at once.
     */
    readonly kind: 'transient' | 'rare' | 'restart',
    /** What really happened, for the local log only (never in an event). */
    readonly detail?: string,
    /** Refused because the cache or the disk has no room for it (retried once the plan shrinks). */
    readonly noRoom = false,
  ) {
    super(message);
  }
}

export interface TransferOpts {
  url: string;
  sha256: string;
  /** `<dir>/<sha256>.part`: kept between attempts so an HTTP download can resume. */
  partPath: string;
  finalPath: string;
  /** Refuse anything bigger (the cache could never hold it). */
  maxBytes: number;
  fetchImpl: typeof fetch;
  /** Where media may come from (sources.ts). */
  sources: SourcePolicy;
  /** DNS for the address check (tests); default the system resolver, all addresses. */
  lookup?: Lookup;
  clock: Clock;
  signal: AbortSignal;
  /** Abort when no byte arrived for this long (a stalled TCP connection never errors by itself). */
  idleMs?: number;
  /**
   * Called before writing with the full size when it is known, else every MiB with the size so
   * far: lets the cache make room, or refuse (by throwing a TransferError) media it cannot hold.
   */
  onSize?(bytes: number): Promise<void> | void;
}

/**
 * Fetches one media file into `partPath` while hashing it, checks the sha256, fsyncs and
 * renames it to `finalPath`. Resolves with the size; throws TransferError. A partial file
 * is kept after a network error (resume with Range next time) and deleted on a mismatch.
 */
export async function transfer(o: TransferOpts): Promise<number> {
  try {
    if (o.url.startsWith('file://')) return await copyLocal(o);
    if (/^https?:\/\//.test(o.url)) return await download(o);
  } catch (e) {
    if (e instanceof SourceRefused) throw new TransferError(e.message, 'rare');
    throw e;
  }
  throw new TransferError(`unsupported URL scheme: ${o.url.slice(0, 16)}`, 'rare');
}

/**
 * Requests `o.url`, following redirects by hand so that every hop's target is checked against
 * the source policy before anything is sent to it (fetch's own redirects would not be).
 */
async function request(o: TransferOpts, headers: Record<string, string>, signal: AbortSignal): Promise<Response> {
  let url = new URL(o.url);
  for (let hop = 0; ; hop++) {
    try {
      // getaddrinfo cannot be cancelled: the watchdog's abort must not wait for it.
      await Promise.race([checkHttpTarget(url, o.sources, o.lookup), aborted(signal)]);
    } catch (e) {
      if (e instanceof SourceRefused) throw e;
      throw asTransferError(e, signal); // the name did not resolve
    }
    let res: Response;
    try {
      res = await o.fetchImpl(url, { signal, headers, redirect: 'manual' });
    } catch (e) {
      // The connection's own address check (pinned-fetch.ts): refused, not "could not fetch".
      if (e instanceof SourceRefused) throw e;
      throw asTransferError(e, signal);
    }
    if (![301, 302, 303, 307, 308].includes(res.status)) return res;
    await res.body?.cancel().catch(() => undefined);
    const location = res.headers.get('location');
    if (!location) throw new TransferError(`HTTP ${res.status} without a Location`, 'rare');
    if (hop >= MAX_REDIRECTS) throw new TransferError(`too many redirects (more than ${MAX_REDIRECTS})`, 'rare');
    try {
      url = new URL(location, url);
    } catch {
      throw new TransferError(`HTTP ${res.status} to an invalid Location`, 'rare');
    }
  }
}

async function download(o: TransferOpts): Promise<number> {
  const offset = await sizeOf(o.partPath);
  // Re-hashing the part costs one sequential read; cheaper and simpler than persisting hash state.
  const hash = offset > 0 ? await hashFile(o.partPath) : createHash('sha256');
  const ctrl = new AbortController();
  const abortOnParent = (): void => ctrl.abort(o.signal.reason);
  // A stop during the re-hash above (seconds on a card) has fired already: a listener alone missed it.
  if (o.signal.aborted) abortOnParent(); else o.signal.addEventListener('abort', abortOnParent);
  // A silent server is one more way a port can answer: the same reason as a refused connection.
  const watchdog = new Watchdog(o.clock, o.idleMs ?? 60_000, () => ctrl.abort(new TransferError(COULD_NOT_FETCH, 'transient', 'stalled: no data received')));
  try {
    const res = await request(o, offset > 0 ? { range: `bytes=${offset}-` } : {}, ctrl.signal);
    let start = 0;
    if (res.status === 206) {
      if (offset === 0 || contentRangeStart(res.headers.get('content-range')) !== offset) {
        await res.body?.cancel().catch(() => undefined);
        await unlink(o.partPath).catch(() => undefined);
        throw new TransferError('unexpected partial response; restarting', 'restart');
      }
      start = offset;
    } else if (res.status === 416 && offset > 0) {
      // The part may already be whole (we died between the last byte and the rename).
      await res.body?.cancel().catch(() => undefined);
      if (hash.copy().digest('hex') === o.sha256) return finish(o, offset);
      await unlink(o.partPath).catch(() => undefined);
      throw new TransferError('server refused to resume; restarting', 'restart');
    } else if (res.status !== 200) {
      await res.body?.cancel().catch(() => undefined);
      throw new TransferError(`HTTP ${res.status}`, res.status >= 500 || res.status === 408 || res.status === 429 ? 'transient' : 'rare');
    }
    const h = start === offset ? hash : createHash('sha256');
    const length = Number(res.headers.get('content-length') ?? NaN);
    if (Number.isFinite(length)) {
      if (start + length > o.maxBytes) throw new TransferError(`too large: ${start + length} bytes > cache size ${o.maxBytes}`, 'rare');
      await o.onSize?.(start + length);
    }
    const fh = await open(o.partPath, start > 0 ? 'a' : 'w');
    let size = start;
    let announced = Number.isFinite(length) ? Infinity : start;
    try {
      if (!res.body) throw new TransferError('empty response body', 'transient');
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        watchdog.progress();
        size += chunk.byteLength;
        if (size > o.maxBytes) throw new TransferError(`too large: over cache size ${o.maxBytes}`, 'rare');
        if (size >= announced + GROWTH_STEP) {
          announced = size;
          await o.onSize?.(size);
        }
        h.update(chunk);
        await writeAll(fh, chunk);
      }
      // The last piece since the last step counts too, before the file can be accepted.
      if (announced !== Infinity && size > announced) await o.onSize?.(size);
      await fh.sync();
    } catch (e) {
      throw asTransferError(e, ctrl.signal);
    } finally {
      await fh.close();
    }
    return await verify(o, h, size, start > 0);
  } finally {
    watchdog.cancel();
    o.signal.removeEventListener('abort', abortOnParent);
  }
}

async function copyLocal(o: TransferOpts): Promise<number> {
  let src: { fh: FileHandle; file: string };
  try {
    src = await openConfined(o.url, o.sources.fileRoots);
  } catch (e) {
    if (e instanceof SourceRefused) throw e;
    throw new TransferError(`cannot read ${o.url}: ${(e as Error).message}`, 'rare');
  }
  try {
    const st = await src.fh.stat();
    if (!st.isFile()) throw new TransferError(`not a file: ${src.file}`, 'rare');
    if (st.size > o.maxBytes) throw new TransferError(`too large: ${st.size} bytes > cache size ${o.maxBytes}`, 'rare');
    await o.onSize?.(st.size);
    return await copyFrom(o, src.fh);
  } finally {
    await src.fh.close().catch(() => undefined);
  }
}

async function copyFrom(o: TransferOpts, src: FileHandle): Promise<number> {
  const h = createHash('sha256');
  const fh = await open(o.partPath, 'w');
  let size = 0;
  try {
    for await (const chunk of src.createReadStream({ signal: o.signal, highWaterMark: 256 * 1024, autoClose: false, start: 0 }) as AsyncIterable<Buffer>) {
      size += chunk.byteLength;
      h.update(chunk);
      await writeAll(fh, chunk);
    }
    await fh.sync();
  } catch (e) {
    throw asTransferError(e, o.signal);
  } finally {
    await fh.close();
  }
  return verify(o, h, size, false);
}

async function verify(o: TransferOpts, h: Hash, size: number, resumed: boolean): Promise<number> {
  const got = h.digest('hex');
  if (got !== o.sha256) {
    await unlink(o.partPath).catch(() => undefined);
    // After a resume the server's file may have changed under us: one clean retry soon.
    // The hash got is never in the reason: it would tell a URL's publisher what a file it may
    // not read contains (or confirm a guess), and the operator fixes the source either way.
    if (resumed) throw new TransferError('sha256 mismatch after resume; restarting from zero', 'restart', `got ${got}`);
    throw new TransferError('sha256 mismatch', 'rare', `got ${got}`);
  }
  return finish(o, size);
}

async function finish(o: TransferOpts, size: number): Promise<number> {
  await rename(o.partPath, o.finalPath);
  await fsyncDir(path.dirname(o.finalPath));
  return size;
}

/** sha256 of a file, streamed. */
export async function hashFile(file: string): Promise<Hash> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 256 * 1024 }) as AsyncIterable<Buffer>) h.update(chunk);
  return h;
}

async function writeAll(fh: FileHandle, chunk: Uint8Array): Promise<void> {
  let off = 0;
  while (off < chunk.byteLength) off += (await fh.write(chunk, off)).bytesWritten;
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}

function contentRangeStart(h: string | null): number | undefined {
  const m = h && /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(h.trim());
  return m ? Number(m[1]) : undefined;
}

function asTransferError(e: unknown, signal: AbortSignal): TransferError {
  if (e instanceof TransferError) return e;
  if (signal.aborted && signal.reason instanceof TransferError) return signal.reason;
  if (signal.aborted) return new TransferError('aborted', 'transient');
  const err = e as NodeJS.ErrnoException & { cause?: { code?: string; message?: string } };
  const code = err.code ?? err.cause?.code;
  const detail = err.cause?.message ?? err.message;
  return new TransferError(COULD_NOT_FETCH, 'transient', code ? `${code}: ${detail}` : detail);
}

/** Rejects when `signal` aborts (with its reason), never resolves otherwise. */
function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => (signal.aborted ? reject(signal.reason) : signal.addEventListener('abort', () => reject(signal.reason), { once: true })));
}

/** Aborts a transfer that makes no progress for `idleMs`, checked a few times per period on the injected clock. */
class Watchdog {
  private last: number;
  private timer;
  constructor(
    private readonly clock: Clock,
    private readonly idleMs: number,
    private readonly onIdle: () => void,
  ) {
    this.last = clock.monotonic();
    this.timer = this.arm();
  }
  progress(): void {
    this.last = this.clock.monotonic();
  }
  cancel(): void {
    this.timer.cancel();
  }
  private arm(): ReturnType<Clock['setTimer']> {
    return this.clock.setTimer(this.idleMs / 4, () => {
      if (this.clock.monotonic() - this.last >= this.idleMs) this.onIdle();
      else this.timer = this.arm();
    });
  }
}
