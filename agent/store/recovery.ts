import { existsSync } from 'node:fs';
import { link, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir, writeFileAtomic } from '../fsx/atomic.js';
import { SCHEMA_NEWER } from './migrations.js';

// A store that cannot be opened must not stop the screen (issue 14 item 3): under
// Restart=always an agent that exits on SQLITE_CORRUPT is a black screen forever. What cannot be
// read is moved aside (kept for a post-mortem, never deleted) and a fresh store is made.

export type ReplacedReason = 'corrupt' | 'not-a-database' | 'newer-schema' | 'missing';

export interface StoreReplacement {
  reason: ReplacedReason;
  /** The error that made the old file unusable (absent for `missing`). */
  error?: string;
  /** Where the old file went (absent for `missing`). */
  movedTo?: string;
  /** The storeId the dataDir's marker named, when it is known. */
  previousStoreId?: string;
}

/** Why an open failure means the file itself is unusable, or undefined when it is something else (permissions, I/O). */
export function unusableReason(e: unknown): ReplacedReason | undefined {
  const code = (e as { code?: unknown }).code;
  if (code === 'SQLITE_CORRUPT') return 'corrupt';
  if (code === 'SQLITE_NOTADB') return 'not-a-database';
  if (code === SCHEMA_NEWER) return 'newer-schema';
  return undefined;
}

/** `20261202T123456Z`: sortable, and no colons (a FAT boot partition or a Windows share refuses them). */
export function utcStamp(at: number): string {
  return new Date(at).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

const SIDECARS = ['-wal', '-shm'];
const KEPT = '.kept';

/**
 * Hard links to the -wal and -shm as they were before SQLite looked at them: a failed open
 * deletes or resets them, and a post-mortem wants them as they were. Returns the cleanup for a
 * good open.
 */
export async function keepSidecars(file: string): Promise<() => Promise<void>> {
  const kept: string[] = [];
  for (const suffix of SIDECARS) {
    const f = file + suffix;
    await unlink(f + KEPT).catch(() => undefined);
    if (existsSync(f)) {
      await link(f, f + KEPT);
      kept.push(f + KEPT);
    }
  }
  return async () => {
    for (const k of kept) await unlink(k).catch(() => undefined);
  };
}

/** agent.db → agent.db.broken-<UTC>, with its -wal and -shm (as kept before the failed open) beside it; returns the new name. */
export async function moveAside(file: string, at: number): Promise<string> {
  let to = `${file}.broken-${utcStamp(at)}`;
  for (let i = 1; existsSync(to); i++) to = `${file}.broken-${utcStamp(at)}-${i}`;
  for (const suffix of SIDECARS) {
    const f = file + suffix;
    if (existsSync(f + KEPT)) {
      await rename(f + KEPT, to + suffix);
      // What the failed open left under the live name belongs to the broken store, not the fresh one.
      await unlink(f).catch(() => undefined);
    } else if (existsSync(f)) {
      await rename(f, to + suffix);
    }
  }
  await rename(file, to);
  await fsyncDir(path.dirname(file));
  return to;
}

/**
 * The marker beside the store: its storeId, outside the database file. A dataDir whose marker
 * names a store that is no longer there lost its store (deleted, or the card replaced by a copy
 * without it): the fresh one says so in a `store-replaced` event.
 */
export const markerOf = (file: string): string => path.join(path.dirname(file), 'store-id');

export async function readMarker(file: string): Promise<string | undefined> {
  try {
    const v = (await readFile(markerOf(file), 'utf8')).trim();
    return v || undefined;
  } catch {
    return undefined;
  }
}

export async function writeMarker(file: string, storeId: string): Promise<void> {
  await writeFileAtomic(markerOf(file), `${storeId}\n`);
}
