import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** Anything with tap's teardown: a test, or the root `t`. */
export interface Teardown {
  teardown(fn: () => unknown): void;
}

/** A fresh temp dir removed when the test ends (tests run in parallel: never share one). */
export function tempDir(t: Teardown, prefix = 'signage-'): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
