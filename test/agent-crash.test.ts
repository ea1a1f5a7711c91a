import t from 'tap';
import { AgentProcess } from './helpers/agent-proc.js';
import { e2eClips, windowFromNow, type PlayMsg } from './helpers/e2e.js';
import { Observer, waitFor } from './helpers/link-rig.js';
import { startBroker } from './helpers/mosquitto.js';
import { tempDir } from './helpers/tmp.js';

t.test('kill -9 of the agent mid-spot: the Will says offline, the next start records the play interrupted, seq goes on', async (t) => {
  const broker = await startBroker(t);
  const obs = await Observer.connect(t, broker.url, ['signage/#']);
  const clips = await e2eClips();
  const dir = tempDir(t, 'crash-');
  const w = windowFromNow(4000, 600);
  await obs.publish('signage/device/crash-1/assignment', JSON.stringify({
    version: 1,
    campaigns: [{ id: 'spot', media: { ...clips.spot, durationMs: 2000 }, timesPerDay: 120, windows: [w.window] }],
    loop: [clips.loop],
  }), { retain: true });
  const a1 = new AgentProcess(dir, 'crash-1', broker.url).register(t);
  a1.start();
  const plays = (): PlayMsg[] => obs.got.filter((m) => m.topic === 'signage/device/crash-1/play').map((m) => m.json() as PlayMsg);
  const statuses = (): Array<{ online: boolean; session: number }> => obs.got.filter((m) => m.topic === 'signage/device/crash-1/status').map((m) => m.json() as { online: boolean; session: number });
  await waitFor('two completed plays', () => plays().length >= 2, 30_000);
  const startedBefore = a1.logged('spot started').length;
  await waitFor('the next spot starts', () => a1.logged('spot started').length > startedBefore, 10_000);
  await a1.kill9();
  const before = plays().length;
  await waitFor('the Will', () => statuses().some((s) => !s.online), 15_000);
  t.same(statuses().find((s) => !s.online), { online: false, session: 1 }, 'the Will names the dead session');

  const a2 = new AgentProcess(dir, 'crash-1', broker.url).register(t);
  a2.start();
  await waitFor('the interrupted play and a new completed one', () => plays().slice(before).some((p) => p.outcome === 'completed'), 30_000);
  const after = plays().slice(before);
  const interrupted = after.find((p) => p.outcome === 'interrupted');
  t.ok(interrupted, 'the killed play is reported interrupted');
  t.equal(interrupted?.seq, before + 1, 'seq continues without a gap');
  t.equal(interrupted?.played, plays()[before - 1]?.played, 'an interrupted play is not counted');
  const all = plays();
  t.same(all.map((p) => p.seq), all.map((_, i) => i + 1), 'seq gapless across the crash');
  t.equal(new Set(all.map((p) => p.eventId)).size, all.length, 'one event id per play');
  const births = statuses().filter((s) => s.online);
  // status is republished (same session) when a version is applied, so look at the distinct sessions.
  t.same([...new Set(births.map((s) => s.session))], [1, 2], 'session rose with the new connection');
  t.equal(await a2.stop(), 0);
});
