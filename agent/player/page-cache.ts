import { open } from 'node:fs/promises';
import path from 'node:path';

/** 8 MiB of a file's head, read a MiB at a time. */
const HEAD_CHUNKS = 8;
const CHUNK_BYTES = 1 << 20;

/**
 * Reads the head of `file` so that the page cache holds it and a spot's open and first reads
 * don't wait on the disk. Best effort: a relative path or a file that cannot be opened is left alone.
 */
export async function warmPageCache(file: string): Promise<void> {
  if (!path.isAbsolute(file)) return;
  const fh = await open(file, 'r').catch(() => undefined);
  if (!fh) return;
  try {
    const buf = Buffer.alloc(CHUNK_BYTES);
    for (let pos = 0, i = 0; i < HEAD_CHUNKS; i++, pos += buf.length) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead < buf.length) break;
    }
  } finally {
    await fh.close();
  }
}
