// The V8 flags `signage-fleet serve` runs with. Why: the ingest holds up to Receive Maximum
// (2,000) decoded messages while a batch commits, ~1.2 KB of JS objects each, and every
// young-generation GC (scavenge) copies all of them. With V8's default 16 MB semi-space that was
// 12-13 scavenges of 5-12 ms each per 20,000 plays drained, 8-21 % of the drain's wall time on
// the event loop (and each one delays every SQLite answer waiting behind it). At 64 MB: 3-4
// scavenges, 6-52 ms in all, most runs under 20 (issue 11's bench; figures in docs/fleet.md).
// The cost is memory, and only under load: V8 grows the two semi-spaces toward 2 × 64 MB only
// while the allocation rate calls for it. The flag cannot be set from inside a running process
// (V8 sizes the heap once, at start), so it goes on the command line: the bin's shebang, the
// README's `node --max-semi-space-size=64 dist/fleet/main.js serve`, and every spawn of `serve`
// in the tests and benches (they import this list).

export const SERVE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=64'];

/** Those of SERVE_NODE_FLAGS that neither `execArgv` nor `nodeOptions` (NODE_OPTIONS) carries. */
export function missingServeFlags(execArgv: readonly string[], nodeOptions: string): string[] {
  const given = new Set([...execArgv, ...nodeOptions.split(/\s+/)]);
  return SERVE_NODE_FLAGS.filter((f) => !given.has(f));
}
