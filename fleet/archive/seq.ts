// Per (device, storeId) seq bookkeeping, pure: the missing seqs are [1, maxSeq] minus what arrived,
// kept as ranges. A seq above maxSeq + 1 opens a gap; a late arrival inside a gap fills it (splits it).

export interface Gap {
  lo: number;
  hi: number;
}

export interface SeqState {
  maxSeq: number;
  gaps: Gap[];
}

/** The state after `seqs` (newly archived, any order) arrive on top of `state`. */
export function applySeqs(state: SeqState, seqs: readonly number[]): SeqState {
  let maxSeq = state.maxSeq;
  let gaps = state.gaps.map((g) => ({ ...g }));
  for (const s of [...seqs].sort((a, b) => a - b)) {
    if (s > maxSeq) {
      if (s > maxSeq + 1) gaps.push({ lo: maxSeq + 1, hi: s - 1 });
      maxSeq = s;
      continue;
    }
    gaps = gaps.flatMap((g) => {
      if (s < g.lo || s > g.hi) return [g];
      const parts: Gap[] = [];
      if (s > g.lo) parts.push({ lo: g.lo, hi: s - 1 });
      if (s < g.hi) parts.push({ lo: s + 1, hi: g.hi });
      return parts;
    });
  }
  return { maxSeq, gaps: gaps.sort((a, b) => a.lo - b.lo) };
}

export const missingCount = (gaps: readonly Gap[]): number => gaps.reduce((n, g) => n + g.hi - g.lo + 1, 0);
