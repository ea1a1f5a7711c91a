import type { Teardown } from '../helpers/tmp.js';
import { clockStep } from './clock-step.js';
import type { Outcome } from './stage.js';

// The chaos scenarios of issue 14, each at full length (`npm run chaos`) and shortened (the
// form `npm test` runs in test/chaos.test.ts). Same code, same checks: only the durations differ.

export interface Scenario {
  name: string;
  what: string;
  run(t: Teardown, form: 'full' | 'short'): Promise<Outcome[]>;
}

export const scenarios: Scenario[] = [
  {
    name: 'clock',
    what: 'wall clock stepped +1 h and -1 h while a spot plays (libfaketime)',
    run: (t, form) =>
      form === 'full' ? clockStep(t, { steps: ['+1h', '-1h'], windowSec: 60, spacingSec: 10 }) : clockStep(t, { steps: ['+1h'], windowSec: 40, spacingSec: 10 }),
  },
];
