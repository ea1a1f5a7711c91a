import type { Assignment, Campaign, MediaRef } from '../core/types.js';
import type { DesiredDoc, DesiredState } from '../core/desired.js';
import type { DisplaySchedule } from '../protocol/display-schema.js';
import type { OverrideLayer } from './planner.js';

// PROTOCOL §3: what is in force is the union of the device assignment and the group
// assignments, device winning on a shared campaign id, earlier groups (config order)
// winning over later ones; overrides layer on top in the same precedence.

export interface EffectiveState {
  campaigns: Campaign[];
  loop: MediaRef[];
  /** Device layer first, then groups in config order; cleared overrides omitted. */
  overrides: OverrideLayer[];
  /** §11: the display schedule of the first document (device, then groups) that carries one. */
  display?: DisplaySchedule;
}

function bySource<T>(docs: readonly DesiredDoc<T>[], source: string): DesiredDoc<T> | undefined {
  return docs.find((d) => d.source === source);
}

/** An assignment past its `notAfter` (issue 10 item 4) is no longer in force. */
function ended(a: Assignment, now: number | undefined): boolean {
  return now !== undefined && a.notAfter !== undefined && !(Date.parse(a.notAfter) > now);
}

/** The earliest `notAfter` still ahead of `now` among the documents held: when what is in force changes next. */
export function nextNotAfter(d: DesiredState, now: number): number | undefined {
  let next: number | undefined;
  for (const a of d.assignments) {
    const at = a.doc?.notAfter === undefined ? NaN : Date.parse(a.doc.notAfter);
    if (at > now && (next === undefined || at < next)) next = at;
  }
  return next;
}

/** `now`: assignments past their notAfter are left out (without it, every document held counts). */
export function effectiveState(d: DesiredState, groups: string[], now?: number): EffectiveState {
  const sources = ['device', ...groups.map((g) => `group/${g}`)];

  const campaigns: Campaign[] = [];
  const seen = new Set<string>();
  let loop: MediaRef[] | undefined;
  let display: DisplaySchedule | undefined;
  for (const source of sources) {
    const a = bySource<Assignment>(d.assignments, source);
    if (!a?.doc || ended(a.doc, now)) continue;
    for (const c of a.doc.campaigns) {
      if (seen.has(c.id)) continue;
      seen.add(c.id);
      campaigns.push(c);
    }
    // An empty loop list is treated as "no opinion", so a group's house content still shows.
    if (loop === undefined && a.doc.loop && a.doc.loop.length > 0) loop = a.doc.loop;
    // Device wins over group as for campaigns; the schedule is taken whole, not merged field by field.
    if (display === undefined && a.doc.display) display = a.doc.display;
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

  return { campaigns, loop: loop ?? [], overrides, ...(display ? { display } : {}) };
}
