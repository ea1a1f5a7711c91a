import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { pino } from 'pino';
import { VirtualClock } from '../../agent/core/clock.js';
import { silentLogger, type Logger } from '../../agent/core/log.js';
import type { MediaRef } from '../../agent/core/types.js';
import { MediaCache, type MediaCacheCtx } from '../../agent/media/cache.js';
import type { Teardown } from './tmp.js';

export interface Rig {
  cache: MediaCache;
  clock: VirtualClock;
  verified: string[];
  failed: Array<{ ref: MediaRef; reason: string }>;
  /** Resolves at the next onVerified/onFailed (whichever comes first). */
  next(): Promise<'verified' | 'failed'>;
  /** Resolves once `sha` is verified. */
  until(sha: string): Promise<void>;
}

export function blob(bytes: number): Buffer {
  return randomBytes(bytes);
}

/** A logger whose JSON lines are kept: what the box's journal would get. */
export function captureLogger(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug', base: undefined }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines };
}

export async function startCache(t: Teardown, dir: string, opts: { maxBytes?: number; clock?: VirtualClock; start?: boolean; ctx?: Partial<Pick<MediaCacheCtx, 'mpvPath' | 'probeTimeoutMs' | 'recheckEveryMs' | 'sources' | 'lookup' | 'minFreeBytes' | 'log' | 'fetchImpl'>> } = {}): Promise<Rig> {
  const clock = opts.clock ?? new VirtualClock(Date.parse('2026-01-10T08:00:00Z'));
  const waiters: Array<(k: 'verified' | 'failed') => void> = [];
  const shaWaiters = new Map<string, Array<() => void>>();
  const rig: Rig = {
    clock,
    verified: [],
    failed: [],
    next: () => new Promise((r) => waiters.push(r)),
    until: (sha) => (rig.verified.includes(sha) ? Promise.resolve() : new Promise((r) => shaWaiters.set(sha, [...(shaWaiters.get(sha) ?? []), r]))),
    cache: new MediaCache({
      dir,
      maxBytes: opts.maxBytes ?? 64 * 1024 * 1024,
      clock,
      log: silentLogger(),
      // The test media server listens on loopback and file:// sources are in temp dirs: both
      // allowed here explicitly, as a site would allow its LAN media server (issue 10).
      sources: { fileRoots: [tmpdir()], allowHosts: ['127.0.0.1'] },
      ...opts.ctx,
      events: {
        onVerified: (sha) => {
          rig.verified.push(sha);
          waiters.splice(0).forEach((w) => w('verified'));
          shaWaiters.get(sha)?.forEach((w) => w());
          shaWaiters.delete(sha);
        },
        onFailed: (ref, reason) => {
          rig.failed.push({ ref, reason });
          waiters.splice(0).forEach((w) => w('failed'));
        },
      },
    }),
  };
  if (opts.start !== false) await rig.cache.start();
  t.teardown(() => rig.cache.stop());
  return rig;
}
