import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import t from 'tap';
import { isNotPublic } from '../agent/media/sources.js';
import { blob, captureLogger, startCache } from './helpers/media-rig.js';
import { sha256, startMediaServer, type MediaServer } from './helpers/media-server.js';
import type { Teardown } from './helpers/tmp.js';
import { tempDir } from './helpers/tmp.js';

// Issue 10 item 5: a media URL comes from whoever can publish an assignment. It must not read
// the box's own files, reach its loopback or LAN, or tell open ports from closed ones.

const NOT_PUBLIC = /^refused: .* is not a public address \(loopback, private or link-local\); allow it in media\.allowHosts$/;

function served(srv: MediaServer, p: string): { url: string; sha256: string } {
  const body = blob(20_000);
  srv.serve(p, { body });
  return { url: srv.url(p), sha256: sha256(body) };
}

/** A server on `host` answering every request with a redirect to `to(path)`. */
async function redirector(t: Teardown, host: string, to: (p: string) => string): Promise<(p: string) => string> {
  const server = http.createServer((req, res) => res.writeHead(302, { location: to(req.url ?? '/') }).end());
  await new Promise<void>((r) => server.listen(0, host, r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return (p) => `http://${host}:${(server.address() as AddressInfo).port}${p}`;
}

t.test('address classes: loopback, private, CGNAT, link-local, ULA, unspecified, multicast, mapped', async (t) => {
  for (const a of ['127.0.0.1', '127.1.2.3', '10.0.0.1', '172.16.5.4', '172.31.255.255', '192.168.1.1', '100.64.0.1', '100.127.255.254',
    '169.254.169.254', '0.0.0.0', '224.0.0.1', '255.255.255.255', '::1', '::', 'fc00::1', 'fd12:3456::1', 'fe80::1', 'ff02::1',
    '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:10.1.2.3', '64:ff9b::a01:203']) t.ok(isNotPublic(a), `${a} refused`);
  for (const a of ['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '203.0.113.10', '2001:4860:4860::8888', '::ffff:8.8.8.8']) t.notOk(isNotPublic(a), `${a} public`);
});

t.test('a loopback URL is refused without allowHosts (nothing is sent to it), fetched with it', async (t) => {
  const srv = await startMediaServer(t);
  const ref = served(srv, '/a.mp4');
  const refused = await startCache(t, tempDir(t, 'media-'), { ctx: { sources: { fileRoots: [], allowHosts: [] } } });
  refused.cache.want([ref]);
  t.equal(await refused.next(), 'failed');
  t.match(refused.failed[0]!.reason, NOT_PUBLIC);
  t.equal(srv.requests.length, 0, 'no request reached the server');

  for (const allowHosts of [['127.0.0.1'], ['127.0.0.0/8'], ['::ffff:127.0.0.1']]) {
    const ok = await startCache(t, tempDir(t, 'media-'), { ctx: { sources: { fileRoots: [], allowHosts } } });
    ok.cache.want([ref]);
    await ok.until(ref.sha256);
    t.pass(`allowed by ${allowHosts[0]}`);
  }
});

t.test('a name is checked on all its addresses, before connecting', async (t) => {
  const looked: string[] = [];
  const lookup = async (host: string): Promise<Array<{ address: string; family: number }>> => {
    looked.push(host);
    return host === 'mixed.example.test' ? [{ address: '93.184.216.34', family: 4 }, { address: 'fd00::5', family: 6 }] : [{ address: '10.1.2.3', family: 4 }];
  };
  const rig = await startCache(t, tempDir(t, 'media-'), { ctx: { sources: { fileRoots: [], allowHosts: ['127.0.0.1'] }, lookup } });
  rig.cache.want([{ url: 'http://lan.example.test/a.mp4', sha256: 'a'.repeat(64) }, { url: 'https://mixed.example.test/b.mp4', sha256: 'b'.repeat(64) }]);
  while (rig.failed.length < 2) await rig.next();
  t.same(rig.failed.map((f) => f.reason).filter((r) => NOT_PUBLIC.test(r)).length, 2, 'both refused');
  t.same(looked.sort(), ['lan.example.test', 'mixed.example.test']);
});

t.test('every redirect hop is checked: an allowed host cannot bounce the download to loopback', async (t) => {
  const srv = await startMediaServer(t); // on 127.0.0.1
  const ref = served(srv, '/real.mp4');
  // 127.0.0.2 is loopback too, but a different host: the allowed one here. It redirects to the
  // media server by address, or (for /to-localhost) by a name that resolves to loopback.
  const bounce = await redirector(t, '127.0.0.2', (p) => (p === '/to-localhost' ? srv.url('/real.mp4').replace('127.0.0.1', 'localhost') : srv.url(p)));
  const viaBounce = { url: bounce('/real.mp4'), sha256: ref.sha256 };
  const refused = await startCache(t, tempDir(t, 'media-'), { ctx: { sources: { fileRoots: [], allowHosts: ['127.0.0.2'] } } });
  refused.cache.want([viaBounce, { url: bounce('/to-localhost'), sha256: 'c'.repeat(64) }]);
  while (refused.failed.length < 2) await refused.next();
  t.ok(refused.failed.every((f) => NOT_PUBLIC.test(f.reason)), 'redirects to 127.0.0.1 and to localhost refused');
  t.equal(srv.requests.length, 0, 'the redirect target was never contacted');

  const allowed = await startCache(t, tempDir(t, 'media-'), { ctx: { sources: { fileRoots: [], allowHosts: ['127.0.0.2', '127.0.0.1'] } } });
  allowed.cache.want([viaBounce]);
  await allowed.until(ref.sha256);
  t.equal(srv.requests.length, 1, 'followed once the target is allowed');
});

t.test('at most 5 redirects', async (t) => {
  const loop = await redirector(t, '127.0.0.1', (p) => `/${Number(p.slice(1)) + 1}`);
  const rig = await startCache(t, tempDir(t, 'media-'));
  rig.cache.want([{ url: loop('/0'), sha256: 'd'.repeat(64) }]);
  t.equal(await rig.next(), 'failed');
  t.equal(rig.failed[0]!.reason, 'too many redirects (more than 5)');
});

t.test('connection failures all read "could not fetch"; the detail is in the local log only', async (t) => {
  // A closed port (refused), a port that accepts and never answers (stalled), a name that does
  // not resolve: a port scanner would tell these apart.
  const closed = net.createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const closedPort = (closed.address() as AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  const held: net.Socket[] = [];
  const silent = net.createServer((s) => void held.push(s));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    held.forEach((s) => s.destroy());
    silent.close();
  });
  const cap = captureLogger();
  const lookup = async (): Promise<never> => {
    throw Object.assign(new Error('getaddrinfo ENOTFOUND nowhere.example.test'), { code: 'ENOTFOUND' });
  };
  const rig = await startCache(t, tempDir(t, 'media-'), { ctx: { log: cap.log, lookup } });
  rig.cache.want([
    { url: `http://127.0.0.1:${closedPort}/a.mp4`, sha256: 'a'.repeat(64) },
    { url: `http://127.0.0.1:${(silent.address() as AddressInfo).port}/b.mp4`, sha256: 'b'.repeat(64) },
  ]);
  while (rig.failed.length < 1) await rig.next();
  await rig.clock.advanceBy(61_000); // the silent one's watchdog
  while (rig.failed.length < 2) await rig.next();
  rig.cache.want([{ url: 'http://nowhere.example.test/c.mp4', sha256: 'c'.repeat(64) }]);
  while (rig.failed.length < 3) await rig.next();
  t.same(rig.failed.map((f) => f.reason), ['could not fetch', 'could not fetch', 'could not fetch']);
  const details = cap.lines.filter((l) => l.msg === 'media download failed').map((l) => String(l.detail));
  t.match(details.join('\n'), /ECONNREFUSED[^]*stalled: no data received[^]*ENOTFOUND|ECONNREFUSED[^]*ENOTFOUND/, 'the log says which');
});

t.test('file:// is confined to media.fileRoots: outside, .., and symlinks out are refused alike', async (t) => {
  const base = tempDir(t, 'media-roots-');
  const root = path.join(base, 'root');
  const outside = path.join(base, 'outside');
  mkdirSync(root);
  mkdirSync(outside);
  const body = blob(10_000);
  const sha = sha256(body);
  writeFileSync(path.join(root, 'in.mp4'), body);
  writeFileSync(path.join(outside, 'secret.mp4'), body);
  symlinkSync(path.join(outside, 'secret.mp4'), path.join(root, 'link.mp4'));
  symlinkSync(outside, path.join(root, 'dir-link'));
  const rig = await startCache(t, tempDir(t, 'media-'), { ctx: { sources: { fileRoots: [root], allowHosts: [] } } });
  const url = (p: string): string => pathToFileURL(p).href;
  const bad = [
    url(path.join(outside, 'secret.mp4')), // exists, outside
    url(path.join(outside, 'missing.mp4')), // does not exist, outside: the same answer
    `file://${root}/../outside/secret.mp4`,
    url(path.join(root, 'link.mp4')),
    url(path.join(root, 'dir-link', 'secret.mp4')),
    url('/etc/passwd'),
  ];
  rig.cache.want(bad.map((u, i) => ({ url: u, sha256: String(i).repeat(64) })));
  while (rig.failed.length < bad.length) await rig.next();
  t.same(new Set(rig.failed.map((f) => f.reason)), new Set(['refused: file:// source outside media.fileRoots']));

  rig.cache.want([{ url: url(path.join(root, 'in.mp4')), sha256: sha }, { url: url(path.join(root, 'gone.mp4')), sha256: 'e'.repeat(64) }]);
  await rig.until(sha);
  while (!rig.failed.some((f) => f.ref.sha256 === 'e'.repeat(64))) await rig.next();
  t.match(rig.failed.at(-1)!.reason, /^cannot read file:.*gone\.mp4: ENOENT/, 'inside a root, a missing file says so');
});

t.test('a name lookup that hangs is given up by the stall watchdog ("could not fetch")', async (t) => {
  const rig = await startCache(t, tempDir(t, 'media-'), { ctx: { lookup: () => new Promise(() => undefined) } });
  rig.cache.want([{ url: 'http://hangs.example.test/a.mp4', sha256: 'a'.repeat(64) }]);
  const failed = rig.next();
  await new Promise((r) => setTimeout(r, 50));
  await rig.clock.advanceBy(61_000);
  t.equal(await failed, 'failed');
  t.equal(rig.failed[0]!.reason, 'could not fetch');
});
