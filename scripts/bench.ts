// `npm run bench`: every subsystem's benchmark in one run, figures printed, never asserted.
// Each section measures its own baseline in the same run (machines here are shared and noisy).
// `npm run bench -- planner player` runs only those sections.

const SECTIONS: Record<string, () => Promise<{ bench: () => Promise<void> }>> = {
  planner: () => import('./bench/planner.js'),
  engine: () => import('./bench/engine.js'),
  player: () => import('./bench/player.js'),
  link: () => import('./bench/link.js'),
  replan: () => import('./bench/replan.js'),
  health: () => import('./bench/health.js'),
  notify: () => import('./bench/notify.js'),
  sd: () => import('./bench/sd.js'),
  media: () => import('./bench/media.js'),
  'fleet-metrics': () => import('./bench/fleet-metrics.js'),
  'fleet-sim': () => import('./bench/fleet-sim.js'),
  alert: () => import('./bench/alert.js'),
  'fleet-ingest': () => import('./bench/fleet-ingest.js'),
};

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const names = wanted.length > 0 ? wanted : Object.keys(SECTIONS);
let failed = 0;
for (const name of names) {
  const load = SECTIONS[name];
  if (!load) {
    console.error(`unknown bench section '${name}' (have: ${Object.keys(SECTIONS).join(', ')})`);
    process.exitCode = 2;
    continue;
  }
  console.log(`\n## ${name}\n`);
  try {
    await (await load()).bench();
  } catch (e) {
    failed++;
    console.error(`bench ${name} failed: ${(e as Error).stack ?? String(e)}`);
  }
}
if (failed > 0) process.exitCode = 1;
