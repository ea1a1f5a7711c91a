import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import { type CachedFile, writeIndex } from './index-file.js';

/** Changes are gathered this long before index.json is rewritten: an SD card wears with every write. */
const INDEX_FLUSH_MS = 10_000;

export interface IndexWriterContext {
  dir: string;
  clock: Clock;
  log: Logger;
  files(): Iterable<CachedFile>;
  /** The cache is started and not stopping: changes are worth a write. */
  live(): boolean;
}

/** When the cache's index.json is written: once per INDEX_FLUSH_MS of changes, and on demand (stop). */
export class IndexWriter {
  private timer: TimerHandle | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly ctx: IndexWriterContext) {}

  markDirty(): void {
    if (this.timer || !this.ctx.live()) return;
    this.timer = this.ctx.clock.setTimer(INDEX_FLUSH_MS, () => {
      this.timer = undefined;
      this.flush().catch((e: unknown) => this.ctx.log.warn({ err: e }, 'media index write failed'));
    });
  }

  /** Drops the pending write (stop writes at once instead). */
  cancel(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  /** Writes now, after any write under way. */
  flush(): Promise<void> {
    this.writing = this.writing.catch(() => undefined).then(() => writeIndex(this.ctx.dir, this.ctx.files()));
    return this.writing;
  }
}
