import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';

/** Temp files of writeFileAtomic end with this; a start-up scan may delete leftovers. */
export const ATOMIC_TEMP_SUFFIX = '.atomic-tmp';

/**
 * Replaces `file` so that a reader (or a power cut) sees either the old or the new content,
 * never a mix: write a temp file in the same directory, fsync it, rename over the target,
 * fsync the directory so the rename itself is durable.
 *
 * Each call uses its own temp name, so concurrent writers to one path never share a temp
 * file; the last rename wins and the result is always one writer's complete content.
 * `mode` is applied with fchmod (not only at open) so the umask cannot weaken or widen it.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, mode?: number): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}${ATOMIC_TEMP_SUFFIX}`);
  const fh = await open(tmp, 'wx', mode ?? 0o644);
  try {
    try {
      await fh.writeFile(data);
      if (mode !== undefined) await fh.chmod(mode);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fsyncDir(dir);
}

/** Makes a rename or unlink in `dir` durable. Some filesystems refuse fsync on a directory: ignored. */
export async function fsyncDir(dir: string): Promise<void> {
  let dh;
  try {
    dh = await open(dir, 'r');
    await dh.sync();
  } catch {
    // EISDIR/EINVAL/EPERM on exotic filesystems: nothing more we can do.
  } finally {
    await dh?.close().catch(() => undefined);
  }
}
