import type { Applied } from '../protocol/outbound.js';
import type { AlertDoc, Assignment, EpochMs, Override } from './types.js';

// The desired state as the agent keeps it (PROTOCOL §3–§5): one document per topic, that is per
// kind and source, with the version last applied there. Versions survive restarts in the store.

/** Where a desired-state document came from: `device`, `group/{g}`, or `fleet` (alerts). */
export type SourceKey = string;
export type DesiredKind = 'assignment' | 'override' | 'alert';

export interface DesiredDoc<T> {
  source: SourceKey;
  version: number;
  /** null = cleared (an empty override payload). */
  doc: T | null;
  appliedAt: EpochMs;
}

export interface DesiredState {
  assignments: DesiredDoc<Assignment>[];
  overrides: DesiredDoc<Override>[];
  /** §10 alerts per source (absent when none was ever stored); a clear is a null doc or a `clear` doc. */
  alerts?: DesiredDoc<AlertDoc>[];
}

/** What one inbound message asks of a topic: a new document, or (overrides only) a clear. */
export type DesiredChange =
  | { kind: 'assignment'; doc: Assignment }
  | { kind: 'override'; doc: Override }
  | { kind: 'override'; clear: true }
  | { kind: 'alert'; doc: AlertDoc }
  | { kind: 'alert'; clear: true };

/** A decoded desired-state message on its way from the link to desired/. */
export interface DesiredMessage {
  topic: string;
  source: SourceKey;
  change: DesiredChange;
  /** The key that signed it (signed mode), named in the `applied` event. */
  keyId?: string;
  /**
   * This document is refused (a stale version). Carried with the message so that a retry long
   * after arrival still reports through the link's `rejected` coalescing.
   */
  reject(reason: string): void;
}

/**
 * The store's answer to one applyIfNewer: whether it wrote (a higher version; or, for a clear, an
 * override in force), what the topic held before, and the whole state after, read in the same
 * transaction so nobody has to read it back.
 */
export interface ApplyResult {
  outcome: 'applied' | 'cleared' | 'unchanged';
  previous: DesiredDoc<Assignment | Override | AlertDoc> | undefined;
  state: DesiredState;
}

/** The versions in force (the status document's `applied`, PROTOCOL §8; `overrides` is our extension): the wire type. */
export type AppliedVersions = Applied;
type VersionsBySource = Omit<Applied, 'overrides'>;

export const NO_DESIRED_STATE: DesiredState = { assignments: [], overrides: [] };

/**
 * The one place "applied" is computed, for the status document and the `status` command: the
 * device's and each configured group's documents (config order), cleared overrides left out.
 * A group no longer in the config is not in force, whatever the store still holds for it.
 */
export function appliedVersions(state: DesiredState, groups: readonly string[]): AppliedVersions {
  const fold = (docs: readonly DesiredDoc<unknown>[]): VersionsBySource => {
    const inForce = (source: string): number | undefined => {
      const d = docs.find((x) => x.source === source);
      return d && d.doc !== null ? d.version : undefined;
    };
    const byGroup: Record<string, number> = {};
    for (const g of groups) {
      const v = inForce(`group/${g}`);
      if (v !== undefined) byGroup[g] = v;
    }
    const device = inForce('device');
    // Key order as published since the first build: device, groups.
    return device === undefined ? { groups: byGroup } : { device, groups: byGroup };
  };
  return { ...fold(state.assignments), overrides: fold(state.overrides) };
}
