import { randomBytes } from 'node:crypto';
import { VirtualClock } from '../../agent/core/clock.js';
import { silentLogger } from '../../agent/core/log.js';
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

export async function startCache(t: Teardown, dir: string, opts: { maxBytes?: number; clock?: VirtualClock; start?: boolean; ctx?: Pick<MediaCacheCtx, 'mpvPath' | 'probeTimeoutMs' | 'recheckEveryMs'> } = {}): Promise<Rig> {
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
