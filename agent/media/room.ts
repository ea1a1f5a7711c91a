import { stat, statfs } from 'node:fs/promises';
import { mb } from './policy.js';
import { TransferError } from './transfer.js';

/**
 * Refuses a download that would leave less than `floorBytes` free on the cache's filesystem
 * (the store, the journal and the OS need the rest). `bytes` is the file's full size (or its
 * size so far); what its `.part` already holds is on disk and not counted twice.
 */
export async function checkFreeSpace(dir: string, partPath: string, bytes: number, floorBytes: number): Promise<void> {
  if (floorBytes <= 0) return;
  const fs = await statfs(dir).catch(() => undefined);
  if (!fs) return; // no answer: the cache size still bounds what is written
  const written = await stat(partPath).then((s) => s.size, () => 0);
  const free = fs.bavail * fs.bsize;
  const more = Math.max(0, bytes - written);
  if (free - more < floorBytes) {
    throw new TransferError(`disk full: needs ${mb(more)} MB, ${mb(free, true)} MB free, media.minFreeMB keeps ${mb(floorBytes, true)} MB`, 'rare', undefined, true);
  }
}
