import { statfs } from 'node:fs/promises';
import path from 'node:path';

// Below both the store (its free-space floor) and health (the heartbeat's diskFreeMB): a statfs,
// no write, so it costs nothing on the SD card.

/** Free space (MB, for the agent's user) of the filesystem holding `dir`, or of its nearest existing parent. */
export async function diskFreeMB(dir: string): Promise<number> {
  let d = path.resolve(dir);
  for (;;) {
    try {
      const s = await statfs(d);
      return Math.floor((Number(s.bavail) * Number(s.bsize)) / (1024 * 1024));
    } catch (e) {
      const parent = path.dirname(d);
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || parent === d) throw e;
      d = parent;
    }
  }
}
