/**
 * The one way tests wait: poll a condition until it holds or a generous bound passes. The bound
 * only stops a stuck test; it is never the assertion (how fast something happens belongs in
 * `npm run bench`). A busy machine makes the wait longer, never the test wrong.
 */
export async function waitFor(what: string, pred: () => boolean | Promise<boolean>, timeoutMs = 15_000, everyMs = 5): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await sleep(everyMs);
  }
}

/** waitFor that answers instead of throwing, for checks that report a miss as a finding. */
export async function waitedFor(what: string, pred: () => boolean | Promise<boolean>, timeoutMs = 15_000, everyMs = 5): Promise<boolean> {
  try {
    await waitFor(what, pred, timeoutMs, everyMs);
    return true;
  } catch {
    return false;
  }
}

/** Only for pacing a load generator or letting a process run a while, never before an assertion. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
