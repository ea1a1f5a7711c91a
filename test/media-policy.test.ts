import t from 'tap';
import type { CachedFile } from '../agent/media/index-file.js';
import { backoffDelay, evictionOrder, planNeed, RARE_BACKOFF, TRANSIENT_BACKOFF } from '../agent/media/policy.js';

t.test('backoff doubles from its first delay up to its cap, with ±20% jitter', async (t) => {
  t.same([0, 1, 2, 3].map((n) => backoffDelay(TRANSIENT_BACKOFF, n, 0.5)), [5_000, 10_000, 20_000, 40_000]);
  t.equal(backoffDelay(TRANSIENT_BACKOFF, 20, 0.5), 3_600_000, 'capped at 1 h');
  t.equal(backoffDelay(TRANSIENT_BACKOFF, 10_000, 0.5), 3_600_000, 'no overflow after many failures');
  t.equal(backoffDelay(TRANSIENT_BACKOFF, 0, 0), 4_000);
  t.equal(backoffDelay(TRANSIENT_BACKOFF, 0, 0.999999), 6_000);
  t.equal(backoffDelay(RARE_BACKOFF, 0, 0.5), 15 * 60_000, 'a mismatch waits 15 min');
  t.equal(backoffDelay(RARE_BACKOFF, 30, 0.5), 24 * 3_600_000, 'then at most a day');
});

t.test('eviction order: unwanted parts, then least recently used files; kept ones never', async (t) => {
  const f = (sha: string, lastUsed: number): CachedFile => ({ sha256: sha.repeat(64), name: sha.repeat(64) + '.mp4', size: 10, lastUsed });
  const files = [f('a', 300), f('b', 100), f('c', 200), f('d', 50)];
  const parts = new Map([['e'.repeat(64), 5], ['f'.repeat(64), 7]]);
  const keep = new Set(['d'.repeat(64), 'f'.repeat(64)]);
  const order = evictionOrder(files, parts, (sha) => keep.has(sha));
  t.same(order.map((v) => `${v.kind}:${v.sha256[0]}`), ['part:e', 'file:b', 'file:c', 'file:a']);
  t.equal(order[0]!.name, `${'e'.repeat(64)}.part`);
});

t.test('planNeed: the file, downloads in progress, and verified files listed before it', async (t) => {
  const sizes = new Map([
    ['c1', { size: 10, verified: true }],
    ['c2', { size: 20, verified: false }], // downloading
    ['old', { size: 40, verified: true }], // the old loop still on screen, listed last
  ]);
  const of = (s: string): { size: number; verified: boolean } | undefined => sizes.get(s);
  t.equal(planNeed(['c1', 'c2', 'new', 'old'], 'new', 5, of), 35, 'the old loop listed after it is not counted');
  t.equal(planNeed(['new', 'c1', 'c2'], 'new', 5, of), 25, 'a download in progress counts wherever it is listed');
  t.equal(planNeed(['old', 'new'], 'new', 5, of), 45);
  t.equal(planNeed(['new'], 'new', 5, of), 5);
});
