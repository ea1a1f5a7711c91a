// The updater in its own process, so a test can kill -9 it at a step of the switch, as a power
// cut would. argv: releasesDir stateDir url sha256 version manifestSig keyEntry killStep.
// Prints `at STEP` at the kill step (then waits to be killed), `restart` when it would restart.
import { SystemClock } from '../../agent/core/clock.js';
import { silentLogger } from '../../agent/core/log.js';
import type { Events } from '../../agent/events/recorder.js';
import { parseKeyRing, ringLookup } from '../../agent/protocol/envelope.js';
import { runProgram } from '../../agent/update/run-program.js';
import { Updater } from '../../agent/update/updater.js';

const [releasesDir, stateDir, url, sha256, version, manifestSig, keyEntry, killStep] = process.argv.slice(2);
if (!releasesDir || !stateDir || !url || !sha256 || !version || !manifestSig || !keyEntry || !killStep) throw new Error('usage: update-switch-child …');
const hang = (): Promise<never> => new Promise<never>(() => setInterval(() => undefined, 1 << 30));
const events = {
  record: async (type: string, detail: unknown) => void process.stdout.write(`event ${type} ${JSON.stringify(detail)}\n`),
} as unknown as Events;
const updater = new Updater({
  releasesDir,
  stateDir,
  version: 'A',
  clock: new SystemClock(),
  log: silentLogger(),
  events,
  settings: { deadlineSec: 600, healthyAfterSec: 1, maxStarts: 3, minGapSec: 1 },
  sources: { fileRoots: ['/tmp'], allowHosts: [] },
  run: runProgram(60_000),
  keys: () => ringLookup(parseKeyRing([keyEntry])!),
  gap: () => ({ spotUnderWay: false }),
  healthy: () => false,
  requestRestart: () => void process.stdout.write('restart\n'),
  onStep: async (step) => {
    if (step !== killStep) return;
    process.stdout.write(`at ${step}\n`);
    await hang();
  },
});
updater.accept({ url, sha256, version, manifestSig });
await hang();
