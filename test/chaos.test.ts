import t from 'tap';
import { scenarios } from './chaos/scenarios.js';
import { formatOutcome } from './chaos/stage.js';

// Issue 14's chaos suite in its short form (`npm run chaos` runs the full one): each scenario
// against the built agent (dist/), real mosquitto, headless mpv, SQLite and ffmpeg clips, with
// durations shortened (one +1 h step, disk full 10 s, flood 5 s). The checks are the scenarios'
// own, the same in both forms; their figures are printed as TAP comments.

// Run one after another (about 4 min on 2 cores): each measures timing, RSS and heartbeats of its own agent.
t.setTimeout(8 * 60_000);

for (const s of scenarios) {
  t.test(`chaos ${s.name}: ${s.what}`, async (t) => {
    const outcomes = await s.run(t, 'short');
    for (const o of outcomes) {
      t.comment(formatOutcome(o));
      for (const c of o.checks) t.ok(c.ok, `${o.scenario}: ${c.name} (${c.detail})`);
    }
  });
}
