import { scenarios } from '../test/chaos/scenarios.js';
import { formatOutcome, Stage } from '../test/chaos/stage.js';

// `npm run chaos [-- NAME...] [--short]`: the chaos scenarios of issue 14 against the built agent
// (dist/), real mosquitto, mpv, SQLite. Prints each scenario's figures and checks; exit 1 on a failed check.

const args = process.argv.slice(2);
const form = args.includes('--short') ? 'short' : 'full';
const names = args.filter((a) => !a.startsWith('--'));
const unknown = names.filter((n) => !scenarios.some((s) => s.name === n));
if (unknown.length > 0) {
  process.stderr.write(`unknown scenario: ${unknown.join(', ')} (have: ${scenarios.map((s) => s.name).join(', ')})\n`);
  process.exit(2);
}
const chosen = names.length ? scenarios.filter((s) => names.includes(s.name)) : scenarios;

let failed = 0;
let passed = 0;
for (const s of chosen) {
  process.stdout.write(`\n### ${s.name}: ${s.what} (${form})\n`);
  const stage = new Stage();
  const onSignal = (): void => void stage.close().then(() => process.exit(130));
  process.once('SIGINT', onSignal);
  try {
    for (const o of await s.run(stage, form)) {
      process.stdout.write(formatOutcome(o) + '\n');
      for (const c of o.checks) c.ok ? passed++ : failed++;
    }
  } catch (e) {
    failed++;
    process.stdout.write(`  FAIL  ${s.name} threw: ${(e as Error).stack ?? String(e)}\n`);
  } finally {
    await stage.close();
    process.off('SIGINT', onSignal);
  }
}
process.stdout.write(`\nchaos: ${passed} checks passed, ${failed} failed\n`);
process.exit(failed > 0 ? 1 : 0);
