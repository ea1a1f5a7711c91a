import type { Assignment, Campaign, MediaRef } from '../core/types.js';
import type { DesiredDoc, DesiredState } from '../store/store.js';
import type { OverrideLayer } from './planner.js';

// PROTOCOL §3: what is in force is the union of the device assignment and the group
// assignments, device winning on a shared campaign id, earlier groups (config order)
// winning over later ones; overrides layer on top in the same precedence.

export interface EffectiveState {
  campaigns: Campaign[];
  loop: MediaRef[];
  /** Device layer first, then groups in config order; cleared overrides omitted. */
  overrides: OverrideLayer[];
  /** Applied assignment versions: device (0 when none) and each configured group that has one. */
  applied: { device: number; groups: Record<string, number> };
}

function bySource<T>(docs: readonly DesiredDoc<T>[], source: string): DesiredDoc<T> | undefined {
  return docs.find((d) => d.source === source);
}

export function effectiveState(d: DesiredState, groups: string[]): EffectiveState {
  const sources = ['device', ...groups.map((g) => `group/${g}`)];

  const campaigns: Campaign[] = [];
  const seen = new Set<string>();
  let loop: MediaRef[] | undefined;
  const applied: EffectiveState['applied'] = { device: 0, groups: {} };
  for (const [i, source] of sources.entries()) {
    const a = bySource<Assignment>(d.assignments, source);
    if (!a) continue;
    if (i === 0) applied.device = a.version;
    else applied.groups[groups[i - 1]!] = a.version;
    if (!a.doc) continue;
    for (const c of a.doc.campaigns) {
      if (seen.has(c.id)) continue;
      seen.add(c.id);
      campaigns.push(c);
    }
    // An empty loop list is treated as "no opinion", so a group's house content still shows.
    if (loop === undefined && a.doc.loop && a.doc.loop.length > 0) loop = a.doc.loop;
  }

  const overrides: OverrideLayer[] = [];
  for (const source of sources) {
    const o = bySource(d.overrides, source);
    if (!o || !o.doc) continue;
    const layer: OverrideLayer = { source, campaigns: o.doc.campaigns };
    if (o.doc.expiresAt !== undefined) {
      const at = Date.parse(o.doc.expiresAt);
      // An unparseable expiry cannot be honoured as a time; treat it as already expired
      // rather than as "forever" (schemas reject it before it gets here anyway).
      layer.expiresAt = Number.isNaN(at) ? 0 : at;
    }
    overrides.push(layer);
  }

  return { campaigns, loop: loop ?? [], overrides, applied };
}
