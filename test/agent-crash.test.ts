import t from 'tap';
import { scene } from './helpers/e2e.js';
import { waitFor } from './helpers/wait.js';


t.test('kill -9 of the agent mid-spot: the Will says offline, the next start records the play interrupted, seq goes on', async (t) => {
  const s = await scene(t, { assignTo: 'device/crash-1', timesPerDay: 120, windowSec: 600 });
  const a1 = s.agent('crash-1');
  a1.start();
  const plays = () => s.plays('crash-1');
  const statuses = () => s.messages<{ online: boolean; session: number }>('crash-1', 'status');
  await waitFor('two completed plays', () => plays().length >= 2, 30_000);
  const startedBefore = a1.logged('spot started').length;
  await waitFor('the next spot starts', () => a1.logged('spot started').length > startedBefore, 10_000);
  await a1.kill9();
  const before = plays().length;
  await waitFor('the Will', () => statuses().some((x) => !x.online), 15_000);
  t.same(statuses().find((x) => !x.online), { online: false, session: 1 }, 'the Will names the dead session');

  const a2 = s.agent('crash-1');
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
  // status is republished (same session) when a version is applied, so look at the distinct sessions.
  const births = statuses().filter((x) => x.online);
  t.same([...new Set(births.map((x) => x.session))], [1, 2], 'session rose with the new connection');
  t.equal(await a2.stop(), 0);
});
