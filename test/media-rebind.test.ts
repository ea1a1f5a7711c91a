import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { blob, startCache } from './helpers/media-rig.js';
import { sha256, startMediaServer, type MediaServer } from './helpers/media-server.js';
import { rebinding } from './helpers/rebinding.js';
import { tempDir } from './helpers/tmp.js';

// Issue 10's DNS-rebinding gap: the media host was checked on one DNS answer and connected to on
// another. A real HTTP server on loopback, and `localhost` behind a resolver (injected through
// the cache's context, as the DNS a rebinding attacker runs) that answers a public address to
// the first question and the truth after it. The policy itself is the real one.

const NOT_PUBLIC = /^refused: localhost is not a public address \(loopback, private or link-local\); allow it in media\.allowHosts$/;

function served(srv: MediaServer, p: string, host = '127.0.0.1'): { url: string; sha256: string } {
  const body = blob(30_000);
  srv.serve(p, { body });
  return { url: srv.url(p).replace('127.0.0.1', host), sha256: sha256(body) };
}

t.test('control: with a fetch that resolves on its own, the rebinding name reaches loopback (the gap as it was)', async (t) => {
  const srv = await startMediaServer(t);
  const ref = served(srv, '/gap.mp4', 'localhost');
  const dns = rebinding();
  const rig = await startCache(t, tempDir(t, 'rebind-'), { ctx: { sources: { fileRoots: [], allowHosts: [] }, lookup: dns.lookup, fetchImpl: globalThis.fetch } });
  rig.cache.want([ref]);
  await rig.until(ref.sha256);
  t.same(srv.requests.map((r) => r.path), ['/gap.mp4'], 'the check saw 203.0.113.7, the connection went to 127.0.0.1');
});

t.test('the address connected to is checked: the rebinding name is refused at connect, nothing is sent', async (t) => {
  const srv = await startMediaServer(t);
  const ref = served(srv, '/a.mp4', 'localhost');
  const dns = rebinding();
  const rig = await startCache(t, tempDir(t, 'rebind-'), { ctx: { sources: { fileRoots: [], allowHosts: [] }, lookup: dns.lookup } });
  rig.cache.want([ref]);
  t.equal(await rig.next(), 'failed');
  t.match(rig.failed[0]!.reason, NOT_PUBLIC, rig.failed[0]!.reason);
  t.same(dns.asked, ['localhost', 'localhost'], 'asked twice: the check (public) and the connection (loopback)');
  t.equal(srv.requests.length, 0, 'no request reached the server');
});

t.test('every redirect hop is checked at connect: an allowed host cannot bounce to a rebinding name', async (t) => {
  const srv = await startMediaServer(t);
  const ref = served(srv, '/b.mp4', 'localhost');
  const bounce = http.createServer((_req, res) => res.writeHead(302, { location: ref.url }).end());
  await new Promise<void>((r) => bounce.listen(0, '127.0.0.2', r));
  t.teardown(() => new Promise<void>((r) => bounce.close(() => r())));
  const dns = rebinding();
  const rig = await startCache(t, tempDir(t, 'rebind-'), { ctx: { sources: { fileRoots: [], allowHosts: ['127.0.0.2'] }, lookup: dns.lookup } });
  rig.cache.want([{ url: `http://127.0.0.2:${(bounce.address() as AddressInfo).port}/b.mp4`, sha256: ref.sha256 }]);
  t.equal(await rig.next(), 'failed');
  t.match(rig.failed[0]!.reason, NOT_PUBLIC, rig.failed[0]!.reason);
  t.equal(srv.requests.length, 0, 'the redirect target was never contacted');
});

t.test('allowed media hosts still download through the checked connection', async (t) => {
  const srv = await startMediaServer(t);
  const byAddress = served(srv, '/c.mp4');
  const byName = served(srv, '/d.mp4', 'localhost');
  // 127.0.0.1 allowed by address, `localhost` by name, resolved by the system as on a box.
  const rig = await startCache(t, tempDir(t, 'rebind-'), { ctx: { sources: { fileRoots: [], allowHosts: ['127.0.0.1', 'localhost'] } } });
  rig.cache.want([byAddress, byName]);
  await rig.until(byAddress.sha256);
  await rig.until(byName.sha256);
  t.same(rig.failed, []);
  t.same(srv.requests.map((r) => r.path).sort(), ['/c.mp4', '/d.mp4']);
});
