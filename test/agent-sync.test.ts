import t from 'tap';
import { AgentProcess } from './helpers/agent-proc.js';
import { e2eClips, windowFromNow, type PlayMsg } from './helpers/e2e.js';
import { Observer, waitFor } from './helpers/link-rig.js';
import { startBroker } from './helpers/mosquitto.js';
import { tempDir } from './helpers/tmp.js';

t.test('two screens of one group start the shared spot together (within 100 ms)', async (t) => {
  const broker = await startBroker(t);
  const obs = await Observer.connect(t, broker.url, ['signage/#']);
  const clips = await e2eClips();
  const dir = tempDir(t, 'sync-');
  const w = windowFromNow(6000, 600);
  await obs.publish('signage/group/site-1/assignment', JSON.stringify({
    version: 1,
    campaigns: [{ id: 'spot', media: { ...clips.spot, durationMs: 2000 }, timesPerDay: 120, windows: [w.window] }],
    loop: [clips.loop],
  }), { retain: true });
  const a = new AgentProcess(dir, 'wall-north', broker.url).register(t);
  const b = new AgentProcess(dir, 'wall-south', broker.url).register(t);
  a.start();
  b.start();
  const plays = (id: string): PlayMsg[] => obs.got.filter((m) => m.topic === `signage/device/${id}/play`).map((m) => m.json() as PlayMsg);
  await waitFor('five plays on each wall', () => plays('wall-north').length >= 5 && plays('wall-south').length >= 5, 60_000);
  const south = new Map(plays('wall-south').map((p) => [p.scheduledAt, p]));
  const diffs: number[] = [];
  for (const p of plays('wall-north')) {
    const q = south.get(p.scheduledAt);
    if (q) diffs.push(Math.abs(Date.parse(p.startedAt) - Date.parse(q.startedAt)));
  }
  t.ok(diffs.length >= 4, `both walls planned the same instants (${diffs.length} shared)`);
  diffs.sort((x, y) => x - y);
  const median = diffs[Math.floor(diffs.length / 2)]!;
  t.ok(median <= 100, `start difference median ${median} ms, all: ${diffs.join(', ')} ms (goal ≤ 100)`);
});
