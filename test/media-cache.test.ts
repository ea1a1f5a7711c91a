import { readdirSync, readFileSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { blob, startCache } from './helpers/media-rig.js';
import { sha256, startMediaServer } from './helpers/media-server.js';
import { tempDir } from './helpers/tmp.js';
import { waitFor } from './helpers/wait.js';

t.test('evicts least recently used beyond maxBytes, never a pinned file', async (t) => {
  const srv = await startMediaServer(t);
  const [a, b, c] = ['a', 'b', 'c'].map((n) => {
    const body = blob(100_000);
    srv.serve(`/${n}.mp4`, { body });
    return { url: srv.url(`/${n}.mp4`), sha256: sha256(body) };
  }) as [{ url: string; sha256: string }, { url: string; sha256: string }, { url: string; sha256: string }];
  const dir = tempDir(t, 'media-');
  const rig = await startCache(t, dir, { maxBytes: 250_000 });
  rig.cache.want([a, b]);
  await Promise.all([rig.until(a.sha256), rig.until(b.sha256)]);
  rig.cache.resolve(b);
  await rig.clock.advanceBy(60_000);
  rig.cache.resolve(a); // a is now the most recently used
  rig.cache.want([c]); // a and b no longer pinned
  await rig.until(c.sha256);
  await waitFor('rig.cache.status().files === 2', () => rig.cache.status().files === 2, 10_000);
  t.ok(rig.cache.resolve(a), 'recently used a kept');
  t.equal(rig.cache.resolve(b), undefined, 'least recently used b evicted');
  t.ok(rig.cache.resolve(c), 'c (pinned) kept');
  t.notOk(readdirSync(dir).some((n) => n.startsWith(b.sha256)), 'b deleted from disk');
  t.ok(rig.cache.status().bytes <= 250_000);
});

t.test('pinned files stay even when they exceed maxBytes (a smaller cache after a restart)', async (t) => {
  const srv = await startMediaServer(t);
  const refs = ['x', 'y'].map((n) => {
    const body = blob(100_000);
    srv.serve(`/${n}`, { body });
    return { url: srv.url(`/${n}`), sha256: sha256(body) };
  });
  const dir = tempDir(t, 'media-');
  const before = await startCache(t, dir, { maxBytes: 250_000 });
  before.cache.want(refs);
  await Promise.all(refs.map((r) => before.until(r.sha256)));
  await before.cache.stop();
  // cacheMaxMB lowered below what the plan already has: nothing it needs is deleted (the plan
  // is known before the cache starts, as the agent's store has it).
  const rig = await startCache(t, dir, { maxBytes: 150_000, start: false });
  rig.cache.want(refs);
  await rig.cache.start();
  await rig.cache.rechecked();
  t.equal(rig.cache.status().files, 2);
  t.ok(refs.every((r) => rig.cache.resolve(r)), 'both resolvable: the plan in force needs them');
  rig.cache.want([refs[1]!]);
  await waitFor('rig.cache.status().files === 1', () => rig.cache.status().files === 1, 10_000);
  t.equal(rig.cache.resolve(refs[0]!), undefined, 'unpinned one evicted once the plan dropped it');
  t.equal(srv.requests.length, 2, 'nothing fetched again');
});

t.test('a file larger than the whole cache fails instead of filling the disk', async (t) => {
  const srv = await startMediaServer(t);
  const body = blob(200_000);
  srv.serve('/huge', { body });
  const rig = await startCache(t, tempDir(t, 'media-'), { maxBytes: 100_000 });
  rig.cache.want([{ url: srv.url('/huge'), sha256: sha256(body) }]);
  t.equal(await rig.next(), 'failed');
  t.match(rig.failed[0]!.reason, /too large/);
});

t.test('restart keeps verified files, their LRU order and durations; nothing downloaded again', async (t) => {
  const srv = await startMediaServer(t);
  const body = blob(80_000);
  const sha = sha256(body);
  srv.serve('/keep.mp4', { body });
  const dir = tempDir(t, 'media-');
  const ref = { url: srv.url('/keep.mp4'), sha256: sha };
  const first = await startCache(t, dir);
  first.cache.want([ref]);
  await first.until(sha);
  first.cache.setDuration(sha, 12_345);
  await first.cache.stop();
  t.ok(JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8')).files[sha], 'index written on stop');

  const second = await startCache(t, dir);
  t.same(second.cache.status(), { files: 1, bytes: body.length, downloading: 0, failed: 0 });
  second.cache.want([ref]);
  await second.cache.rechecked(); // files found at start are re-hashed before they are handed out
  t.same(second.cache.resolve(ref), { path: path.join(dir, `${sha}.mp4`), sha256: sha, durationMs: 12_345 });
  t.equal(second.cache.duration(sha), 12_345);
  t.equal(srv.requests.length, 1, 'not fetched again');
});

t.test('start cleans temp leftovers, abandoned and useless parts, and files whose size is wrong', async (t) => {
  const srv = await startMediaServer(t);
  const dir = tempDir(t, 'media-');
  const good = blob(30_000);
  const goodSha = sha256(good);
  const broken = blob(30_000);
  const brokenSha = sha256(broken);
  writeFileSync(path.join(dir, goodSha), good);
  writeFileSync(path.join(dir, `${goodSha}.part`), good.subarray(0, 100)); // already verified
  writeFileSync(path.join(dir, brokenSha), broken.subarray(0, 1000)); // truncated behind the index's back
  writeFileSync(path.join(dir, 'index.json'), JSON.stringify({ version: 1, files: { [brokenSha]: { name: brokenSha, size: 30_000, lastUsed: 1 } } }));
  writeFileSync(path.join(dir, '.index.json.123.abcdef.atomic-tmp'), 'half');
  const stale = `${'c'.repeat(64)}.part`;
  writeFileSync(path.join(dir, stale), 'old');
  const longAgo = new Date(Date.parse('2026-01-01T00:00:00Z'));
  utimesSync(path.join(dir, stale), longAgo, longAgo);
  writeFileSync(path.join(dir, 'README.txt'), 'not ours');

  const rig = await startCache(t, dir); // its clock is 2026-01-10: the stale part is 9 days old
  t.same(readdirSync(dir).sort(), [goodSha, 'README.txt', 'index.json'].sort());
  await rig.cache.rechecked();
  t.ok(rig.cache.resolve({ url: 'file:///x', sha256: goodSha }));
  t.equal(rig.cache.resolve({ url: 'file:///x', sha256: brokenSha }), undefined);

  // The broken one is fetched again when wanted.
  srv.serve('/broken', { body: broken });
  rig.cache.want([{ url: srv.url('/broken'), sha256: brokenSha }]);
  await rig.until(brokenSha);
  t.ok(readFileSync(path.join(dir, brokenSha)).equals(broken));
});

t.test('a recent partial download survives a restart and resumes with Range', async (t) => {
  const srv = await startMediaServer(t);
  const body = blob(300_000);
  const sha = sha256(body);
  srv.serve('/resume.mp4', { body });
  const dir = tempDir(t, 'media-');
  writeFileSync(path.join(dir, `${sha}.part`), body.subarray(0, 120_000));
  const rig = await startCache(t, dir);
  rig.cache.want([{ url: srv.url('/resume.mp4'), sha256: sha }]);
  await rig.until(sha);
  t.same(srv.requests.map((r) => r.range), ['bytes=120000-']);
  t.equal(srv.bytesSent, 180_000);
  t.ok(readFileSync(path.join(dir, `${sha}.mp4`)).equals(body));
});

t.test('a partial file that is already whole (died before the rename) is finished on a 416', async (t) => {
  const srv = await startMediaServer(t);
  const body = blob(50_000);
  const sha = sha256(body);
  srv.serve('/whole', { body });
  const dir = tempDir(t, 'media-');
  writeFileSync(path.join(dir, `${sha}.part`), body);
  const rig = await startCache(t, dir);
  rig.cache.want([{ url: srv.url('/whole'), sha256: sha }]);
  await rig.until(sha);
  t.equal(srv.bytesSent, 0);
  t.same(readdirSync(dir).filter((n) => n !== 'index.json'), [sha]);
});

t.test('verifyAll reports files whose content does not match their name', async (t) => {
  const dir = tempDir(t, 'media-');
  const good = blob(10_000);
  writeFileSync(path.join(dir, `${sha256(good)}.mp4`), good);
  const rotten = blob(10_000);
  const rottenName = sha256(rotten);
  rotten[5_000] = rotten[5_000]! ^ 0xff;
  writeFileSync(path.join(dir, rottenName), rotten);
  const rig = await startCache(t, dir, { start: false }); // doctor: no start needed
  const problems = await rig.cache.verifyAll();
  t.equal(problems.length, 1);
  t.match(problems[0], new RegExp(`^${rottenName}: content hashes to [0-9a-f]{64}$`));
});

t.test('a verified file deleted behind the cache\'s back is not handed out and is fetched again', async (t) => {
  const srv = await startMediaServer(t);
  const body = blob(20_000);
  const sha = sha256(body);
  srv.serve('/gone.mp4', { body });
  const rig = await startCache(t, tempDir(t, 'media-'));
  const ref = { url: srv.url('/gone.mp4'), sha256: sha };
  rig.cache.want([ref]);
  await rig.until(sha);
  unlinkSync(rig.cache.resolve(ref)!.path);
  rig.verified.length = 0;
  t.equal(rig.cache.resolve(ref), undefined);
  await rig.until(sha);
  t.ok(readFileSync(rig.cache.resolve(ref)!.path).equals(body));
  t.equal(srv.requests.length, 2);
});
