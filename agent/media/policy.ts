import type { CachedFile } from './index-file.js';

// The cache's decisions, as pure functions: when to try a failed download again, what to
// delete when the cache is over its size, and which measured lengths to believe.

export interface Backoff {
  firstMs: number;
  maxMs: number;
}

/** Network, 5xx, stalls: the next attempt soon, then ever more slowly. */
export const TRANSIENT_BACKOFF: Backoff = { firstMs: 5_000, maxMs: 3_600_000 };
/** A wrong hash, a 4xx, a file too large: someone must fix the server; look again rarely. */
export const RARE_BACKOFF: Backoff = { firstMs: 15 * 60_000, maxMs: 24 * 3_600_000 };

/** Delay before the next attempt after `failuresBefore` earlier failures of this kind; `random` in [0,1). */
export function backoffDelay(b: Backoff, failuresBefore: number, random = Math.random()): number {
  const base = Math.min(b.maxMs, b.firstMs * 2 ** Math.min(failuresBefore, 30));
  // ±20% jitter so a fleet that lost the CDN together does not come back together.
  return Math.round(base * (0.8 + 0.4 * random));
}

export interface EvictionCandidate {
  sha256: string;
  /** File name in the cache directory. */
  name: string;
  size: number;
  kind: 'part' | 'file';
}

/**
 * What may be deleted, in the order to delete it: partial downloads nobody waits for, then
 * verified files least recently used first. Anything `keep` says yes to is never listed
 * (media of the plan in force, downloads in progress).
 */
export function evictionOrder(files: Iterable<CachedFile>, parts: ReadonlyMap<string, number>, keep: (sha256: string) => boolean): EvictionCandidate[] {
  const out: EvictionCandidate[] = [];
  for (const [sha, size] of parts) if (!keep(sha)) out.push({ sha256: sha, name: `${sha}.part`, size, kind: 'part' });
  const lru = [...files].filter((f) => !keep(f.sha256)).sort((a, b) => a.lastUsed - b.lastUsed || a.sha256.localeCompare(b.sha256));
  for (const f of lru) out.push({ sha256: f.sha256, name: f.name, size: f.size, kind: 'file' });
  return out;
}

/**
 * A play's measured length is believed only near the file's probed one: within 1 s (a spot
 * starts and ends a few frames late) plus 10 % (a player that runs slightly slow or fast).
 */
export function learnedLengthFits(probedMs: number, measuredMs: number): boolean {
  return Math.abs(measuredMs - probedMs) <= 1_000 + 0.1 * probedMs;
}

/** A cached clip's length for planning: mpv's probe of the file, else what plays measured. */
export function lengthOf(f: CachedFile): number | undefined {
  return typeof f.probedMs === 'number' ? f.probedMs : f.durationMs;
}

export interface WantedSize {
  size: number;
  /** Verified and on disk (else a download in progress that announced this size). */
  verified: boolean;
}

/**
 * The bytes the plan needs once `sha256` (of `bytes`) is in: itself, every other wanted file
 * downloading, and the wanted verified files listed before it. Verified files listed after it
 * are left out: the agent lists campaigns, then the loop, then the old loop still on screen
 * during a loop replacement, which stays (pinned, on top of the budget) only until the new one
 * takes over. `order` is the wanted sha256s in the agent's order.
 */
export function planNeed(order: readonly string[], sha256: string, bytes: number, sizeOf: (sha256: string) => WantedSize | undefined): number {
  let need = bytes;
  let before = true;
  for (const s of order) {
    if (s === sha256) {
      before = false;
      continue;
    }
    const w = sizeOf(s);
    if (w && (before || !w.verified)) need += w.size;
  }
  return need;
}

/** Megabytes for a reason: whole from 10 up, one decimal below (small test caches); `down` for a limit. */
export function mb(bytes: number, down = false): string {
  const m = bytes / (1024 * 1024);
  const round = down ? Math.floor : Math.ceil;
  return m >= 10 ? String(round(m)) : (round(m * 10) / 10).toFixed(1);
}
