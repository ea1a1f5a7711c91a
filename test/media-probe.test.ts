import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { parseProbe, probeDuration } from '../agent/media/probe.js';
import { makeClip, makeStill } from './helpers/clips.js';
import { blob, startCache } from './helpers/media-rig.js';
import { sha256, startMediaServer } from './helpers/media-server.js';
import { tempDir } from './helpers/tmp.js';

t.test('an assignment without durationMs: the length is known from verification on, and kept across a restart', async (t) => {
  const body = readFileSync(await makeClip({ kind: 'pattern', seconds: 3 }));
  const sha = sha256(body);
  const srv = await startMediaServer(t);
  srv.serve('/spot.mp4', { body });
  const dir = tempDir(t, 'media-');
  const ref = { url: srv.url('/spot.mp4'), sha256: sha }; // no durationMs, as the contract allows
  const first = await startCache(t, dir);
  first.cache.want([ref]);
  await first.until(sha);
  const d = first.cache.duration(sha);
  t.ok(d !== undefined && Math.abs(d - 3_000) <= 100, `probed ${d} ms for a 3 s clip`);
  t.equal(first.cache.resolve(ref)?.durationMs, d, 'the clip handed to the player carries it');
  await first.cache.stop();
  t.equal(JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8')).files[sha].probedMs, d, 'kept in the index');

  // No mpv at all the second time: the length can only come from the index.
  const second = await startCache(t, dir, { ctx: { mpvPath: path.join(dir, 'no-such-mpv') } });
  second.cache.want([ref]);
  t.equal(second.cache.duration(sha), d, 'known from the first plan after a restart');
  await second.until(sha);
  t.equal(second.cache.resolve(ref)?.durationMs, d);
  t.equal(srv.requests.length, 1, 'not fetched again');
});

t.test('a file cached before lengths were probed is probed after its start-up re-hash, before it is announced', async (t) => {
  const body = readFileSync(await makeClip({ kind: 'pattern', seconds: 2 }));
  const sha = sha256(body);
  const dir = tempDir(t, 'media-');
  writeFileSync(path.join(dir, `${sha}.mp4`), body);
  writeFileSync(path.join(dir, 'index.json'), JSON.stringify({ version: 1, files: { [sha]: { name: `${sha}.mp4`, size: body.length, lastUsed: 1 } } }));
  const rig = await startCache(t, dir);
  await rig.until(sha);
  const d = rig.cache.duration(sha);
  t.ok(d !== undefined && Math.abs(d - 2_000) <= 100, `probed ${d} ms`);
});

t.test('a measured length far from the probed one is not learned; a close one is kept but the probe stays authoritative', async (t) => {
  const body = readFileSync(await makeClip({ kind: 'black', seconds: 2 }));
  const sha = sha256(body);
  const srv = await startMediaServer(t);
  srv.serve('/b.mp4', { body });
  const dir = tempDir(t, 'media-');
  const rig = await startCache(t, dir);
  rig.cache.want([{ url: srv.url('/b.mp4'), sha256: sha }]);
  await rig.until(sha);
  const probed = rig.cache.duration(sha)!;
  t.ok(Math.abs(probed - 2_000) <= 100, `probed ${probed}`);
  rig.cache.setDuration(sha, 3_601_923); // a +1 h wall-clock step mid-spot
  t.equal(rig.cache.duration(sha), probed, 'the step is not learned');
  rig.cache.setDuration(sha, probed + 40); // a real play, a frame late
  t.equal(rig.cache.duration(sha), probed, 'the probe stays the length used for planning');
  await rig.cache.stop();
  const rec = JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8')).files[sha];
  t.equal(rec.durationMs, probed + 40, 'only the plausible measure reached the index');
});

t.test('a still image has no probed length: the assignment\'s durationMs (or the engine default) applies', async (t) => {
  const body = readFileSync(await makeStill());
  const sha = sha256(body);
  const srv = await startMediaServer(t);
  srv.serve('/poster.png', { body });
  const dir = tempDir(t, 'media-');
  const rig = await startCache(t, dir);
  const ref = { url: srv.url('/poster.png'), sha256: sha, durationMs: 15_000 };
  rig.cache.want([ref]);
  await rig.until(sha);
  t.equal(rig.cache.duration(sha), undefined);
  t.equal(rig.cache.resolve(ref)?.durationMs, 15_000);
  await rig.cache.stop();
  t.equal(JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8')).files[sha].probedMs, null, 'probed once, not again at every start');
});

t.test('the probe is bounded: a hung mpv is killed and the file is verified without a length', async (t) => {
  const dir = tempDir(t, 'media-');
  const hung = path.join(dir, 'hung-mpv.sh');
  writeFileSync(hung, '#!/bin/sh\nexec sleep 60\n');
  chmodSync(hung, 0o755);
  const body = blob(10_000);
  const sha = sha256(body);
  const srv = await startMediaServer(t);
  srv.serve('/x.mp4', { body });
  const rig = await startCache(t, path.join(dir, 'cache'), { ctx: { mpvPath: hung, probeTimeoutMs: 300 } });
  rig.cache.want([{ url: srv.url('/x.mp4'), sha256: sha }]);
  await rig.until(sha);
  t.equal(rig.cache.duration(sha), undefined);
  t.ok(rig.cache.resolve({ url: srv.url('/x.mp4'), sha256: sha }), 'playable all the same');
});

t.test('probeDuration: an audio-only file (probed again with its audio track) and a video with audio', async (t) => {
  const dir = tempDir(t, 'media-');
  const mp3 = path.join(dir, 'jingle.mp3');
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'sine=d=2.5', mp3]);
  const ms = await probeDuration(mp3, { mpvPath: 'mpv' });
  t.ok(ms !== undefined && Math.abs(ms - 2_500) <= 100, `audio ${ms} ms`);
  const av = path.join(dir, 'av.mp4');
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=25', '-f', 'lavfi', '-i', 'sine', '-t', '2', '-pix_fmt', 'yuv420p', '-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac', av]);
  const avMs = await probeDuration(av, { mpvPath: 'mpv' });
  t.ok(avMs !== undefined && Math.abs(avMs - 2_000) <= 100, `video with audio ${avMs} ms`);
});

t.test('probeDuration: an unrecognised file and a missing mpv give no length', async (t) => {
  const dir = tempDir(t, 'media-');
  const junk = path.join(dir, 'junk.mp4');
  writeFileSync(junk, blob(64 * 1024));
  t.equal(await probeDuration(junk, { mpvPath: 'mpv' }), undefined);
  t.equal(await probeDuration(junk, { mpvPath: path.join(dir, 'nope') }), undefined);
  t.equal(parseProbe('SIGNAGE-PROBE 7.320000 no\n'), 7_320);
  t.equal(parseProbe('SIGNAGE-PROBE 4.545306 \n'), 4_545, 'audio only');
  t.equal(parseProbe('SIGNAGE-PROBE  yes\n'), undefined, 'still image');
  t.equal(parseProbe(''), undefined);
});
