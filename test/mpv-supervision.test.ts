import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { corruptClip, makeClip, tempDir } from './helpers/clips.js';
import { clip, harness, spotRecord } from './helpers/mpv-harness.js';
import { waitFor } from './helpers/wait.js';

function mpvPid(h: ReturnType<typeof harness>): number {
  // The pid is mpv's answer to our own liveness probe; read it the same way.
  const ipc = (h.player as unknown as { ipc?: { pid?: number } }).ipc;
  if (!ipc?.pid) throw new Error('no mpv');
  return ipc.pid;
}

t.test('kill -9 of mpv mid-spot: spot interrupted, mpv restarted, loop back', async (t) => {
  const loopClip = await makeClip({ kind: 'pattern', seconds: 2 });
  const spotClip = await makeClip({ kind: 'pattern', seconds: 4, size: '192x144' });
  const h = harness(t);
  await h.player.start();
  h.player.setLoop([clip(loopClip)]);
  await waitFor('loop playing', () => h.traces.some((e) => e.event === 'playing'), 15_000);
  const r = spotRecord();
  await h.player.playSpot({ playId: 'p', campaignId: 'c', clip: clip(spotClip) }, r.handlers);
  await waitFor('spot started', () => r.startedAt !== undefined, 15_000);
  const pid = mpvPid(h);
  const killedAt = Date.now();
  process.kill(pid, 'SIGKILL');
  await r.ended;
  t.equal(r.outcome, 'interrupted');
  t.match(r.detail, /mpv exited/);
  t.equal(h.player.state().state, 'down', 'down until restarted');
  await waitFor('restarted', () => h.restarts.length === 1, 15_000);
  t.comment(`restarted after ${Date.now() - killedAt} ms (a figure: npm run bench -- player)`);
  t.not(mpvPid(h), pid, 'a new mpv');
  const n = h.traces.length;
  await waitFor('loop after restart', () => h.traces.slice(n).some((e) => e.kind === 'loop' && e.event === 'playing'), 15_000);
  t.equal(h.player.state().state, 'playing');
  t.equal(r.endedCalls, 1, 'onEnded exactly once (the loop came back since)');
});

t.test('a stalled mpv (SIGSTOP) is killed and restarted', async (t) => {
  const loopClip = await makeClip({ kind: 'pattern', seconds: 2 });
  const h = harness(t, { timings: { stallMs: 1000, pingIntervalMs: 500, pingTimeoutMs: 500 } });
  await h.player.start();
  h.player.setLoop([clip(loopClip)]);
  await waitFor('loop playing', () => h.traces.some((e) => e.event === 'playing'), 15_000);
  const pid = mpvPid(h);
  process.kill(pid, 'SIGSTOP');
  t.teardown(() => { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } });
  await waitFor('restart', () => h.restarts.length === 1, 15_000);
  t.match(h.restarts[0], /stalled|not answering/);
  await waitFor('playing again', () => h.player.state().state === 'playing', 15_000);
  t.not(mpvPid(h), pid);
});

t.test('a corrupt clip and a missing file fail; the loop goes on', async (t) => {
  const loopClip = await makeClip({ kind: 'pattern', seconds: 2 });
  const h = harness(t);
  await h.player.start();
  h.player.setLoop([clip(loopClip)]);
  await waitFor('loop playing', () => h.traces.some((e) => e.event === 'playing'), 15_000);
  const bad = spotRecord();
  await h.player.playSpot({ playId: 'x', campaignId: 'c', clip: clip(corruptClip(h.dir)) }, bad.handlers);
  await bad.ended;
  t.equal(bad.outcome, 'failed');
  t.equal(bad.startedAt, undefined, 'never started');
  t.notOk(h.player.busy());
  const missing = spotRecord();
  await h.player.playSpot({ playId: 'y', campaignId: 'c', clip: clip(path.join(h.dir, 'nope.mp4')) }, missing.handlers);
  await missing.ended;
  t.equal(missing.outcome, 'failed');
  const n = h.traces.length;
  await waitFor('loop goes on', () => h.traces.slice(n).some((e) => e.kind === 'loop' && e.event === 'playing'), 15_000);
  t.equal(h.player.state().state, 'playing');
  t.equal(h.restarts.length, 0, 'no restart needed');
});

t.test('a missing spot with an empty loop fails and leaves the screen idle', async (t) => {
  const h = harness(t);
  await h.player.start();
  const r = spotRecord();
  await h.player.playSpot({ playId: 'y', campaignId: 'c', clip: clip(path.join(h.dir, 'nope.mp4')) }, r.handlers);
  await r.ended;
  t.equal(r.outcome, 'failed');
  await waitFor('idle', () => h.player.state().state === 'idle', 15_000);
  await t.rejects(h.player.screenshot(), /nothing is playing/);
});

t.test('restart(reason) on request; stop() interrupts a playing spot', async (t) => {
  const spotClip = await makeClip({ kind: 'pattern', seconds: 4, size: '192x144' });
  const h = harness(t);
  await h.player.start();
  const pid = mpvPid(h);
  await h.player.restart('asked');
  t.same(h.restarts, ['asked']);
  t.not(mpvPid(h), pid);
  const r = spotRecord();
  await h.player.playSpot({ playId: 'p', campaignId: 'c', clip: clip(spotClip) }, r.handlers);
  await waitFor('spot started', () => r.startedAt !== undefined, 15_000);
  await h.player.stop();
  t.equal(r.outcome, 'interrupted');
  t.equal(h.player.state().state, 'down');
  await t.rejects(h.player.playSpot({ playId: 'q', campaignId: 'c', clip: clip(spotClip) }, spotRecord().handlers), /down/);
});

t.test('a spot whose file never opens (a FIFO nobody writes) fails on the load timeout; the loop goes on', async (t) => {
  const loopClip = await makeClip({ kind: 'pattern', seconds: 2 });
  const h = harness(t, { timings: { loadTimeoutMs: 1000 } });
  const fifo = path.join(h.dir, 'hang.mp4');
  execFileSync('mkfifo', [fifo]);
  await h.player.start();
  h.player.setLoop([clip(loopClip)]);
  await waitFor('loop playing', () => h.traces.some((e) => e.event === 'playing'), 15_000);
  const r = spotRecord();
  await h.player.playSpot({ playId: 'h', campaignId: 'c', clip: clip(fifo) }, r.handlers);
  await r.ended;
  t.equal(r.outcome, 'failed');
  t.match(r.detail, /no playback 1000 ms after loadfile/);
  const n = h.traces.length;
  await waitFor('loop goes on', () => h.traces.slice(n).some((e) => e.kind === 'loop' && e.event === 'playing'), 15_000);
  t.equal(h.player.state().state, 'playing');
  t.equal(r.endedCalls, 1, 'onEnded exactly once (the loop came back since)');
});

t.test('an mpv that cannot start leaves the player down, retrying, instead of failing the agent', async (t) => {
  // A stand-in mpv that counts its launches and then runs the real one with a bad option.
  const dir = tempDir(t);
  const count = path.join(dir, 'launches');
  const wrapper = path.join(dir, 'mpv');
  writeFileSync(wrapper, `#!/bin/sh\necho x >> ${count}\nexec mpv --no-such-option-anywhere "$@"\n`, { mode: 0o755 });
  const restarts: string[] = [];
  const h = harness(t, { mpvPath: wrapper, events: { onRestarted: (r) => restarts.push(r) } });
  await h.player.start();
  t.equal(h.player.state().state, 'down', 'start resolved, the player reports down');
  const spot = await makeClip({ kind: 'pattern', seconds: 1 });
  await t.rejects(h.player.playSpot({ playId: 'x', campaignId: 'c', clip: clip(spot) }, spotRecord().handlers), /down/);
  await waitFor('three launches', () => existsSync(count) && readFileSync(count, 'utf8').split('\n').length > 3, 10_000);
  t.equal(restarts.length, 0, 'no restart can succeed with a bad option');
  t.equal(h.player.state().state, 'down', 'still down, still trying');
});
