import type { Teardown } from '../helpers/tmp.js';
import { clipCorrupt } from './clip-corrupt.js';
import { clockStep } from './clock-step.js';
import { diskFull } from './disk-full.js';
import { flood } from './flood.js';
import type { Outcome } from './stage.js';
import { storeDamage } from './store-damage.js';

// The chaos scenarios of issue 14, each at full length (`npm run chaos`) and shortened (the
// form `npm test` runs in test/chaos.test.ts). Same code, same checks, but for the durations
// and the flood's two wall-time bounds, which only the full form asserts (issue 9: no
// wall-time assertion in `npm test`).

export interface Scenario {
  name: string;
  what: string;
  run(t: Teardown, form: 'full' | 'short'): Promise<Outcome[]>;
}

const ALL_DAMAGES = ['truncated', 'garbage', 'zeroed header', 'deleted'] as const;

export const scenarios: Scenario[] = [
  {
    name: 'clock',
    what: 'wall clock stepped +1 h and -1 h while a spot plays (libfaketime)',
    run: (t, form) =>
      form === 'full' ? clockStep(t, { steps: ['+1h', '-1h'], windowSec: 60, spacingSec: 10 }) : clockStep(t, { steps: ['+1h'], windowSec: 40, spacingSec: 10 }),
  },
  {
    name: 'disk',
    what: 'dataDir on an 8 MiB tmpfs, filled while playing, then freed',
    run: async (t, form) => [await diskFull(t, { holdSec: form === 'full' ? 45 : 10, spacingSec: 5 })],
  },
  {
    name: 'store',
    what: 'agent.db truncated, garbage, zeroed header, deleted while stopped',
    run: async (t, form) => [await storeDamage(t, { damages: [...ALL_DAMAGES], playsPerRun: form === 'full' ? 2 : 1 })],
  },
  {
    name: 'clip',
    what: 'a cached clip with bytes flipped in place (same size), its source gone',
    run: async (t, form) => [await clipCorrupt(t, { watchSec: form === 'full' ? 40 : 20 })],
  },
  {
    name: 'flood',
    what: '2,000 junk msgs/s on the inbound topics (QoS 0)',
    run: async (t, form) => [await flood(t, form === 'full' ? { floodSec: 30, rate: 2000, spacingSec: 4, timed: true } : { floodSec: 5, rate: 2000, spacingSec: 2.5, timed: false })],
  },
];
