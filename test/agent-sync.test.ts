import t from 'tap';
import { scene } from './helpers/e2e.js';
import { waitFor } from './helpers/wait.js';


t.test('two screens of one group start the shared spot together (within 100 ms)', async (t) => {
  const s = await scene(t, { assignTo: 'group/site-1', timesPerDay: 120, windowSec: 600, leadMs: 6000 });
  const a = s.agent('wall-north');
  const b = s.agent('wall-south');
  a.start();
  b.start();
  await waitFor('five plays on each wall', () => s.plays('wall-north').length >= 5 && s.plays('wall-south').length >= 5, 60_000);
  const south = new Map(s.plays('wall-south').map((p) => [p.scheduledAt, p]));
  const diffs: number[] = [];
  for (const p of s.plays('wall-north')) {
    const q = south.get(p.scheduledAt);
    if (q) diffs.push(Math.abs(Date.parse(p.startedAt) - Date.parse(q.startedAt)));
  }
  t.ok(diffs.length >= 4, `both walls planned the same instants (${diffs.length} shared)`);
  diffs.sort((x, y) => x - y);
  const median = diffs[Math.floor(diffs.length / 2)]!;
  t.ok(median <= 100, `start difference median ${median} ms, all: ${diffs.join(', ')} ms (goal ≤ 100)`);
});
