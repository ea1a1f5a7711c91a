import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdirSync } from 'node:fs';
import t from 'tap';
import { blob, startCache } from './helpers/media-rig.js';
import { sha256, startMediaServer } from './helpers/media-server.js';
import { tempDir } from './helpers/tmp.js';
import { waitFor } from './helpers/wait.js';

// Issue 10 item 5: whoever publishes an assignment must not be able to fill the box's disk.
// Before, each file only had to fit the cache by itself: a plan of many files grew past
// cacheMaxMB (pinned media is never evicted), with one 'media cache too small' log line.

t.test('media the plan needs beyond cacheMaxMB is refused with media-failed, nothing left on disk', async (t) => {
  const srv = await startMediaServer(t);
  const refs = ['x', 'y'].map((n) => {
    const body = blob(300_000);
    srv.serve(`/${n}.mp4`, { body });
    return { url: srv.url(`/${n}.mp4`), sha256: sha256(body) };
  }) as [{ url: string; sha256: string }, { url: string; sha256: string }];
  const dir = tempDir(t, 'media-');
  const rig = await startCache(t, dir, { maxBytes: 400_000 });
  rig.cache.want(refs);
  await waitFor('one verified and one failed', () => rig.verified.length + rig.failed.length === 2, 20_000);
  t.equal(rig.verified.length, 1, 'one of them fits');
  t.same(rig.failed.map((f) => f.reason), ['cache full: plan needs 0.6 MB > cacheMaxMB 0.3 MB']);
  const refused = refs.find((r) => r.sha256 === rig.failed[0]!.ref.sha256)!;
  const kept = refs.find((r) => r !== refused)!;
  t.equal(rig.cache.resolve(refused), undefined);
  t.ok(rig.cache.status().bytes <= 400_000, `cache holds ${rig.cache.status().bytes} bytes`);
  t.same(readdirSync(dir).filter((n) => n.startsWith(refused.sha256)), [], 'no file or part of the refused one');

  // The plan shrinks: the refused file is tried again at once, not after the 15 min backoff.
  rig.cache.want([refused]);
  await rig.until(refused.sha256);
  await waitFor('the dropped one evicted', () => rig.cache.status().files === 1, 10_000);
  t.equal(rig.cache.resolve(kept), undefined);
  t.ok(rig.cache.resolve(refused));
});

t.test('a download without Content-Length is refused as it grows past the plan budget', async (t) => {
  const first = blob(1_500_000);
  const chunked = blob(3_000_000);
  const server = http.createServer((req, res) => {
    const body = req.url === '/first.mp4' ? first : chunked;
    if (req.url === '/first.mp4') return void res.writeHead(200, { 'content-length': body.length }).end(body);
    // Written in pieces without a length, so Node sends it chunked (one end(body) would get a length).
    res.writeHead(200);
    for (let i = 0; i < body.length; i += 256 * 1024) res.write(body.subarray(i, i + 256 * 1024));
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const url = (p: string): string => `http://127.0.0.1:${(server.address() as AddressInfo).port}${p}`;
  const dir = tempDir(t, 'media-');
  const rig = await startCache(t, dir, { maxBytes: 4_000_000 });
  const a = { url: url('/first.mp4'), sha256: sha256(first) };
  const b = { url: url('/chunked.mp4'), sha256: sha256(chunked) };
  rig.cache.want([a]);
  await rig.until(a.sha256);
  rig.cache.want([a, b]);
  t.equal(await rig.next(), 'failed');
  t.match(rig.failed[0], { ref: { sha256: b.sha256 }, reason: /^cache full: plan needs 4\.\d MB > cacheMaxMB 3\.8 MB$/ });
  t.same(readdirSync(dir).filter((n) => n.startsWith(b.sha256)), [], 'its partial file deleted');
  t.ok(rig.cache.resolve(a), 'the media already in place is kept');
});

t.test('a download that would pass the free-space floor is refused: "disk full"', async (t) => {
  const srv = await startMediaServer(t);
  const body = blob(100_000);
  srv.serve('/a.mp4', { body });
  const dir = tempDir(t, 'media-');
  // A floor no disk has: the file fits the cache, not the disk.
  const rig = await startCache(t, dir, { ctx: { minFreeBytes: 2 ** 60 } });
  rig.cache.want([{ url: srv.url('/a.mp4'), sha256: sha256(body) }]);
  t.equal(await rig.next(), 'failed');
  t.match(rig.failed[0]!.reason, /^disk full: needs 0\.1 MB, \d+(\.\d)? MB free, media\.minFreeMB keeps \d+ MB$/);
  t.same(readdirSync(dir).filter((n) => n.startsWith(sha256(body))), [], 'nothing written');

  const ok = await startCache(t, tempDir(t, 'media-'), { ctx: { minFreeBytes: 1024 * 1024 } });
  ok.cache.want([{ url: srv.url('/a.mp4'), sha256: sha256(body) }]);
  await ok.until(sha256(body));
  t.pass('a floor the disk clears lets it in');
});
