import { readFileSync } from 'node:fs';
import { assignmentSchema, formatIssues } from '../protocol/schemas.js';
import type { Assignment } from '../core/types.js';
import { UsageError } from './usage.js';

/** Reads and validates an assignment file (PROTOCOL §4); every problem in one UsageError. */
export function readAssignmentFile(file: string): Assignment {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UsageError(`assignment: cannot read ${file}: ${(e as Error).message}`);
  }
  const r = assignmentSchema.safeParse(raw);
  if (!r.success) throw new UsageError(formatIssues(r.error, 'assignment').join('\n'));
  return r.data as Assignment;
}
