import type { ApplyResult, DesiredChange, DesiredDoc, DesiredKind, DesiredState, SourceKey } from '../core/desired.js';
import type { AlertDoc, Assignment, EpochMs, Override } from '../core/types.js';
import type { Query } from './db.js';

// The `desired` table: one row per topic (kind, source), its version and document (NULL = a
// cleared override). Statements only; SqliteStore chooses the transaction.

interface DesiredRow {
  kind: DesiredKind;
  source: string;
  version: number;
  doc: string | null;
  applied_at: number;
}

type AnyDoc = Assignment | Override | AlertDoc;

function docOf(r: DesiredRow): DesiredDoc<AnyDoc> {
  return { source: r.source, version: r.version, doc: r.doc === null ? null : (JSON.parse(r.doc) as AnyDoc), appliedAt: r.applied_at };
}

export async function readDesired(q: Query): Promise<DesiredState> {
  const rows = await q.all<DesiredRow>('SELECT kind, source, version, doc, applied_at FROM desired ORDER BY kind, source');
  const out: DesiredState = { assignments: [], overrides: [] };
  for (const r of rows) {
    if (r.kind === 'assignment') out.assignments.push(docOf(r) as DesiredDoc<Assignment>);
    else if (r.kind === 'override') out.overrides.push(docOf(r) as DesiredDoc<Override>);
    // Only when there is one: a store that never had an alert reads as it always did.
    else (out.alerts ??= []).push(docOf(r) as DesiredDoc<AlertDoc>);
  }
  return out;
}

/** Run inside one transaction: the check and the write see the same row. */
export async function applyIfNewerIn(q: Query, source: SourceKey, change: DesiredChange, at: EpochMs): Promise<ApplyResult> {
  const row = await q.get<DesiredRow>('SELECT kind, source, version, doc, applied_at FROM desired WHERE kind = ? AND source = ?', [change.kind, source]);
  const previous = row ? docOf(row) : undefined;
  let outcome: ApplyResult['outcome'] = 'unchanged';
  if ('clear' in change) {
    if (row && row.doc !== null) {
      await q.run('UPDATE desired SET doc = NULL, applied_at = ? WHERE kind = ? AND source = ?', [at, change.kind, source]);
      outcome = 'cleared';
    }
  } else if (!row || change.doc.version > row.version) {
    await q.run(
      `INSERT INTO desired(kind, source, version, doc, applied_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(kind, source) DO UPDATE SET version = excluded.version, doc = excluded.doc, applied_at = excluded.applied_at`,
      [change.kind, source, change.doc.version, JSON.stringify(change.doc), at],
    );
    outcome = 'applied';
  }
  return { outcome, previous, state: await readDesired(q) };
}
