import t from 'tap';
import { AgentProcess } from './helpers/agent-proc.js';
import { e2eClips, windowFromNow, type PlayMsg } from './helpers/e2e.js';
import { Observer, waitFor } from './helpers/link-rig.js';
import { startBroker } from './helpers/mosquitto.js';
import { tempDir } from './helpers/tmp.js';

t.test('broker down mid-window, agent restarted offline: plays go on from the stored plan and every event arrives once, in order', async (t) => {
  const broker = await startBroker(t);
  const obs = await Observer.connect(t, broker.url, ['signage/#']);
  const clips = await e2eClips();
  const dir = tempDir(t, 'offline-');
  const w = windowFromNow(4000, 900);
  await obs.publish('signage/device/off-1/assignment', JSON.stringify({
    version: 1,
    campaigns: [{ id: 'spot', media: { ...clips.spot, durationMs: 2000 }, timesPerDay: 180, windows: [w.window] }],
    loop: [clips.loop],
  }), { retain: true });
  const a1 = new AgentProcess(dir, 'off-1', broker.url).register(t);
  a1.start();
  const plays = (): PlayMsg[] => obs.got.filter((m) => m.topic === 'signage/device/off-1/play').map((m) => m.json() as PlayMsg);
  await waitFor('two plays online', () => plays().length >= 2, 30_000);

  await broker.kill();
  const ended1 = a1.logged('spot ended').length;
  await waitFor('two plays while the broker is down', () => a1.logged('spot ended').length >= ended1 + 2, 20_000);
  t.equal(await a1.stop(), 0, 'stops cleanly without a broker');

  // A reboot with the broker still down: the last applied plan plays from the store.
  const a2 = new AgentProcess(dir, 'off-1', broker.url).register(t);
  a2.start();
  await waitFor('two plays after the offline restart', () => a2.logged('spot ended').length >= 2, 30_000);
  const total = a1.logged('spot ended').length + a2.logged('spot ended').length;

  await broker.restart();
  await waitFor(`all ${total}+ play events delivered`, () => plays().length >= total, 60_000);
  const all = plays();
  t.same(all.map((p) => p.seq), all.map((_, i) => i + 1), 'seq gapless, oldest first');
  t.equal(new Set(all.map((p) => p.eventId)).size, all.length, 'never two events for one play');
  t.ok(all.every((p) => p.outcome === 'completed'), 'nothing interrupted by the outage');
  t.ok(all.slice(1).every((p, i) => p.startedAt > all[i]!.startedAt), 'in play order');
  t.equal(await a2.stop(), 0);
});
