import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import t from 'tap';
import { Agent } from '../agent/agent.js';
import { parseConfig } from '../agent/config/config.js';
import { SystemClock } from '../agent/core/clock.js';
import { silentLogger } from '../agent/core/log.js';
import { ClockSync } from '../agent/health/clock-sync.js';
import { HealthSampler } from '../agent/health/sampler.js';
import { MqttLink } from '../agent/link/link.js';
import { EventRecorder } from '../agent/events/recorder.js';
import { MediaCache } from '../agent/media/cache.js';
import { LoopSelection } from '../agent/media/loop.js';
import { SqliteStore } from '../agent/store/sqlite-store.js';
import { makeClip } from './helpers/clips.js';
import { blob, startCache } from './helpers/media-rig.js';
import { sha256, startMediaServer } from './helpers/media-server.js';
import { startBroker } from './helpers/mosquitto.js';
import { harness } from './helpers/mpv-harness.js';
import { tempDir } from './helpers/tmp.js';
import { waitFor } from './helpers/wait.js';

// The whole agent in this process, the real parts: mosquitto, the MQTT link, SQLite, the media
// cache downloading over HTTP, and a headless mpv whose start-file traces say what was on screen.
t.test('a new loop replaces the old one on screen only once verified; a 404 never blanks the screen', async (t) => {
  const srv = await startMediaServer(t);
  const a = readFileSync(await makeClip({ kind: 'pattern', seconds: 1 }));
  const b = readFileSync(await makeClip({ kind: 'black', seconds: 1 }));
  srv.serve('/a.mp4', { body: a });
  srv.serve('/b.mp4', { body: b, hold: true }); // held until release(): a slow download
  const A = { url: srv.url('/a.mp4'), sha256: sha256(a) };
  const B = { url: srv.url('/b.mp4'), sha256: sha256(b) };
  const C = { url: srv.url('/missing.mp4'), sha256: 'c'.repeat(64) }; // the server answers 404

  const broker = await startBroker(t);
  const dir = tempDir(t, 'loop-');
  const log = silentLogger();
  const clock = new SystemClock();
  const config = parseConfig({ deviceId: 'loop-1', groups: ['all'], dataDir: dir, mqtt: { url: broker.url } }, path.join(dir, 'c.json'), false);
  const store = new SqliteStore({ file: path.join(dir, 'agent.db'), log });
  let agent: Agent | undefined;
  const failed: string[] = [];
  let aOnDiskWhenBVerified: boolean | undefined;
  const fileOf = (ref: { sha256: string }): string => path.join(dir, 'media', `${ref.sha256}.mp4`);
  const media = new MediaCache({
    dir: path.join(dir, 'media'),
    // A and B do not fit together: B's download must make room, and A may only go once B took over.
    maxBytes: a.length + b.length - 1,
    clock,
    log,
    sources: { fileRoots: [], allowHosts: ['127.0.0.1'] }, // the media server is on loopback
    events: {
      onVerified: (sha) => {
        if (sha === B.sha256) aOnDiskWhenBVerified = existsSync(fileOf(A));
        agent?.onMediaVerified();
      },
      onFailed: (ref) => void failed.push(ref.sha256),
    },
  });
  const h = harness(t);
  // Every loop the agent hands the player (re-setting an unchanged loop restarts it at its first clip).
  const setLoops: string[][] = [];
  const setLoop = h.player.setLoop.bind(h.player);
  h.player.setLoop = (clips) => {
    setLoops.push(clips.map((c) => c.path));
    setLoop(clips);
  };
  const events = new EventRecorder({ store, clock, log });
  agent = new Agent({
    clock, store, events, log, config, media,
    link: new MqttLink({ config, store, events, clock, log, agentVersion: 'test', bootedAt: clock.now() }),
    player: h.player,
    health: new HealthSampler({ dataDir: dir, log }),
    clockSync: new ClockSync({ log, runCommand: async () => 'yes' }),
    agentVersion: 'test',
    bootedAt: clock.now(),
  });
  await agent.start();
  t.teardown(() => agent!.stop());
  const op = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
  t.teardown(() => op.endAsync());
  const assign = (version: number, loop: object[]): Promise<unknown> =>
    op.publishAsync('signage/device/loop-1/assignment', JSON.stringify({ version, campaigns: [], loop }), { qos: 1, retain: true });
  const loopStarts = (file: string, from = 0): number => h.traces.slice(from).filter((e) => e.event === 'start' && e.kind === 'loop' && e.path === file).length;

  await assign(1, [A]);
  await waitFor('loop A on screen', () => loopStarts(fileOf(A)) >= 1, 20_000);

  await assign(2, [B]);
  await waitFor('loop B requested', () => srv.requests.some((r) => r.path === '/b.mp4'), 20_000);
  const mark = h.traces.length;
  await waitFor('loop A still playing while B downloads', () => loopStarts(fileOf(A), mark) >= 2, 20_000);
  t.equal(loopStarts(fileOf(B)), 0, 'B not shown before it is verified');

  srv.release();
  await waitFor('loop B on screen once verified', () => loopStarts(fileOf(B)) >= 1, 20_000);
  t.equal(aOnDiskWhenBVerified, true, 'A stayed pinned in the cache while it was on screen');
  await waitFor('A released (evicted) once B took over', () => !existsSync(fileOf(A)), 20_000);

  await assign(3, [C]);
  await waitFor('C failed (404)', () => failed.includes(C.sha256), 20_000);
  const mark2 = h.traces.length;
  await waitFor('loop B keeps playing after the 404', () => loopStarts(fileOf(B), mark2) >= 2, 20_000);
  t.same(setLoops.filter((l, i) => i > 0 && l.join() === setLoops[i - 1]!.join()), [], 'an unchanged loop is never set again');
  t.same(setLoops.at(-1), [fileOf(B)]);
  t.equal(h.traces.slice(mark2).filter((e) => e.event === 'start' && e.kind === 'loop' && e.path !== fileOf(B)).length, 0, 'nothing else looped');
});

t.test('LoopSelection with a real cache: old loop until every new clip is verified, partial new loop only on an empty screen', async (t) => {
  const srv = await startMediaServer(t);
  const bodies = [blob(20_000), blob(20_000), blob(20_000)];
  bodies.forEach((b, i) => srv.serve(`/${i}.mp4`, { body: b, hold: i === 2 }));
  const [r0, r1, r2] = bodies.map((b, i) => ({ url: srv.url(`/${i}.mp4`), sha256: sha256(b) })) as [{ url: string; sha256: string }, { url: string; sha256: string }, { url: string; sha256: string }];
  const rig = await startCache(t, tempDir(t, 'media-'));
  const sel = new LoopSelection((m) => rig.cache.resolve(m));
  rig.cache.want([r0, r1]);
  await rig.until(r0.sha256);
  t.same(sel.clips([r0, r1]).map((c) => c.sha256).filter((s) => s === r0.sha256), [r0.sha256], 'nothing on screen yet: what is ready plays');
  await rig.until(r1.sha256);
  t.same(sel.clips([r0, r1]).map((c) => c.sha256), [r0.sha256, r1.sha256]);
  t.same(sel.onScreen(), [r0, r1]);
  rig.cache.want([...sel.onScreen(), r1, r2]); // r1 is ready, r2 downloads
  t.same(sel.clips([r1, r2]).map((c) => c.sha256), [r0.sha256, r1.sha256], 'half the new loop is not enough: the old one stays');
  await waitFor('r2 requested', () => srv.requests.some((r) => r.path === '/2.mp4'), 10_000);
  srv.release();
  await rig.until(r2.sha256);
  t.same(sel.clips([r1, r2]).map((c) => c.sha256), [r1.sha256, r2.sha256]);
  t.same(sel.onScreen(), [r1, r2]);
  t.same(sel.clips([]), [], 'an empty loop is a deliberate black screen');
});
