import type { ApplyResult, DesiredChange } from '../core/desired.js';

// PROTOCOL §3–§5 version rules, per topic (per kind and source). The store does the part that
// must be atomic (write only above the stored version; clear only what is in force); these
// rules say what a refusal means:
//  - version > applied             → applied, `applied` event, host re-plans, status republished;
//  - version == applied, same doc  → ignored quietly: the retained copy re-delivered on every
//                                    (re)subscribe, or a QoS 1 redelivery;
//  - version == applied, other doc → rejected `stale version N <= N` (a publisher reused a version);
//  - version <  applied            → rejected `stale version N <= M`.
// An empty override payload clears that override (its version stays, so an older one cannot
// come back); clearing with nothing in force is ignored.

export type Verdict =
  | { outcome: 'applied' | 'cleared'; version: number }
  | { outcome: 'ignored' }
  | { outcome: 'rejected'; reason: string };

/** Pure: what the store's answer to `change` means. */
export function verdictOf(change: DesiredChange, r: Pick<ApplyResult, 'outcome' | 'previous'>): Verdict {
  const applied = r.previous?.version ?? 0;
  if (r.outcome === 'applied' && 'doc' in change) return { outcome: 'applied', version: change.doc.version };
  if (r.outcome === 'cleared') return { outcome: 'cleared', version: applied };
  if ('clear' in change) return { outcome: 'ignored' };
  const version = change.doc.version;
  // A cleared override is not "the same": clearing deleted the retained copy on the broker, so
  // seeing that version again is a publisher's mistake worth a `rejected` event.
  const stored = r.previous?.doc;
  if (version === applied && stored != null && JSON.stringify(stored) === JSON.stringify(change.doc)) return { outcome: 'ignored' };
  return { outcome: 'rejected', reason: `stale version ${version} <= ${applied}` };
}
