import t from 'tap';
import { execFileSync } from 'node:child_process';
import { AgentProcess } from './helpers/agent-proc.js';
import { e2eClips, windowFromNow, type PlayMsg } from './helpers/e2e.js';
import { Observer, waitFor } from './helpers/link-rig.js';
import { startBroker } from './helpers/mosquitto.js';
import { tempDir } from './helpers/tmp.js';

t.test('kill -9 of mpv mid-spot: restarted within 3 s, the play interrupted, the target still met in the window', async (t) => {
  const broker = await startBroker(t);
  const obs = await Observer.connect(t, broker.url, ['signage/#']);
  const clips = await e2eClips();
  // 4 plays in a 60 s window: the grid is 7.5, 22.5, 37.5 and 52.5 s into it.
  const w = windowFromNow(5000, 60);
  await obs.publish('signage/device/mpvkill/assignment', JSON.stringify({
    version: 1,
    campaigns: [{ id: 'spot', media: { ...clips.spot, durationMs: 2000 }, timesPerDay: 4, windows: [w.window] }],
    loop: [clips.loop],
  }), { retain: true });
  const agent = new AgentProcess(tempDir(t, 'mpvkill-'), 'mpvkill', broker.url).register(t);
  agent.start();
  await waitFor('the first spot starts', () => agent.logged('spot started').length >= 1, 30_000);
  const mpvPid = Number(execFileSync('pgrep', ['-P', String(agent.pid), 'mpv']).toString().trim().split('\n')[0]);
  t.ok(mpvPid > 0, `mpv is the agent's child (pid ${mpvPid})`);
  const startsBefore = agent.logged('mpv started').length;
  const killedAt = Date.now();
  process.kill(mpvPid, 'SIGKILL');
  await waitFor('mpv restarted', () => agent.logged('mpv started').length > startsBefore, 10_000);
  const restartedAt = Number(agent.logged('mpv started').at(-1)?.time);
  t.ok(restartedAt - killedAt <= 3000, `mpv restarted ${restartedAt - killedAt} ms after kill -9 (goal ≤ 3000)`);

  const events = (): Array<{ type: string; detail: unknown }> => obs.got.filter((m) => m.topic === 'signage/device/mpvkill/event').map((m) => m.json() as { type: string; detail: unknown });
  await waitFor('player-restarted event', () => events().some((e) => e.type === 'player-restarted'), 10_000);
  const plays = (): PlayMsg[] => obs.got.filter((m) => m.topic === 'signage/device/mpvkill/play').map((m) => m.json() as PlayMsg);
  await waitFor('four completed plays by the end of the window', () => plays().filter((p) => p.outcome === 'completed').length >= 4, 75_000);
  t.equal(plays()[0]?.outcome, 'interrupted', 'the killed spot is interrupted');
  const completed = plays().filter((p) => p.outcome === 'completed');
  t.ok(completed.every((p) => p.inWindow && Date.parse(p.startedAt) < w.start + 60_000), 'all four inside the window');
  t.equal(completed.at(-1)?.played, 4, 'target met: 4/4');
});
