import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import type { MediaRef } from '../agent/core/types.js';
import { blob, startCache } from './helpers/media-rig.js';
import { sha256, startMediaServer } from './helpers/media-server.js';
import { tempDir } from './helpers/tmp.js';
import { waitFor } from './helpers/wait.js';

function flipByte(file: string, at: number): void {
  const b = readFileSync(file);
  b[at] = b[at]! ^ 0xff; // same size: the start-up scan's size check cannot see it
  writeFileSync(file, b);
}

t.test('a clip corrupted on the card while stopped is never handed out, is reported and fetched again', async (t) => {
  const srv = await startMediaServer(t);
  const good = blob(300_000);
  const rotten = blob(300_000);
  srv.serve('/good.mp4', { body: good });
  srv.serve('/rotten.mp4', { body: rotten });
  const refs: MediaRef[] = [
    { url: srv.url('/good.mp4'), sha256: sha256(good) },
    { url: srv.url('/rotten.mp4'), sha256: sha256(rotten) },
  ];
  const dir = tempDir(t, 'media-');
  const first = await startCache(t, dir);
  first.cache.want(refs);
  await Promise.all(refs.map((r) => first.until(r.sha256)));
  const rottenFile = first.cache.resolve(refs[1]!)!.path;
  await first.cache.stop();
  flipByte(rottenFile, 150_000);

  const second = await startCache(t, dir, { start: false });
  let handedOut = 0;
  let polling = true;
  // resolve() as the engine and the loop would call it, from the very start, until the re-hash is done.
  const poll = (async () => {
    while (polling) {
      if (second.cache.resolve(refs[1]!)) handedOut++;
      await new Promise((r) => setImmediate(r));
    }
  })();
  await second.cache.start();
  second.cache.want(refs);
  await second.cache.rechecked();
  await waitFor('second.failed.length > 0', () => second.failed.length > 0, 10_000);
  polling = false;
  await poll;
  t.equal(handedOut, 0, 'the corrupted file was never handed out');
  t.equal(second.failed.length, 1);
  t.equal(second.failed[0]!.ref.sha256, refs[1]!.sha256);
  t.equal(second.failed[0]!.ref.url, refs[1]!.url, 'reported with the URL it is fetched from');
  t.match(second.failed[0]!.reason, /corrupted: content hashes to [0-9a-f]{64}, not to its sha256/);
  t.ok(second.cache.resolve(refs[0]!), 'the intact file plays');

  await second.until(refs[1]!.sha256); // fetched again from the media server
  const clip = second.cache.resolve(refs[1]!);
  t.ok(clip && readFileSync(clip.path).equals(rotten), 'restored, byte for byte');
  t.equal(srv.requests.filter((r) => r.path === '/rotten.mp4').length, 2);
});

t.test('the slow re-hash timer finds a file corrupted while the agent runs', async (t) => {
  const srv = await startMediaServer(t);
  const body = blob(200_000);
  srv.serve('/a.mp4', { body });
  const ref = { url: srv.url('/a.mp4'), sha256: sha256(body) };
  const rig = await startCache(t, tempDir(t, 'media-'), { ctx: { recheckEveryMs: 60_000 } });
  rig.cache.want([ref]);
  await rig.until(ref.sha256);
  await rig.cache.rechecked();
  const file = rig.cache.resolve(ref)!.path;
  flipByte(file, 10);
  rig.verified.length = 0;
  await rig.clock.advanceBy(60_000);
  await waitFor('rig.failed.length === 1', () => rig.failed.length === 1, 10_000);
  t.match(rig.failed[0]!.reason, /corrupted/);
  const now = rig.cache.resolve(ref);
  t.ok(now === undefined || readFileSync(now.path).equals(body), 'never handed out with bytes that are not its hash');
  await rig.until(ref.sha256);
  t.ok(readFileSync(rig.cache.resolve(ref)!.path).equals(body), 'fetched again');
});

t.test('files of an unwanted old plan are re-hashed too, and dropped when rotten', async (t) => {
  const dir = tempDir(t, 'media-');
  const old = blob(50_000);
  const name = sha256(old);
  old[0] = old[0]! ^ 1;
  writeFileSync(path.join(dir, name), old);
  const rig = await startCache(t, dir);
  await rig.cache.rechecked();
  t.equal(rig.cache.status().files, 0);
  t.equal(rig.failed.length, 1);
  t.equal(rig.cache.resolve({ url: 'file:///x', sha256: name }), undefined);
});
