// Issue 10's DNS-rebinding gap, on the update path: release downloads went through the global
// fetch, which resolves on its own after the source policy's check, so a release URL whose name
// answered a public address to the check and 127.0.0.1 to the connection reached the box itself
// (media had been closed with pinned-fetch.ts; the installer had not). A real HTTP server on
// loopback; `localhost` behind an injected resolver playing the attacker's DNS.
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { SystemClock } from '../agent/core/clock.js';
import type { Lookup } from '../agent/media/sources.js';
import { ReleaseInstaller, UpdateRefused, type UpdateArgs } from '../agent/update/installer.js';
import type { ReleaseLayout } from '../agent/update/layout.js';
import { rebinding } from './helpers/rebinding.js';
import { tempDir } from './helpers/tmp.js';

const body = Buffer.from('not really a release, but its hash is what the command names\n');
const sha256 = createHash('sha256').update(body).digest('hex');

async function releaseServer(t: { teardown(fn: () => unknown): void }): Promise<{ url: (host: string) => string; hits: string[] }> {
  const hits: string[] = [];
  const srv = http.createServer((req, res) => {
    hits.push(req.url ?? '');
    res.writeHead(200, { 'content-length': String(body.length) }).end(body);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => srv.close(() => r())));
  const port = (srv.address() as AddressInfo).port;
  return { url: (host) => `http://${host}:${port}/agent-2.0.0.tar.gz`, hits };
}

const installer = (dir: string, lookup: Lookup, fetchImpl?: typeof fetch): ReleaseInstaller => new ReleaseInstaller({
  layout: {} as ReleaseLayout, // download() does not touch the release layout
  cacheDir: dir,
  clock: new SystemClock(),
  sources: { fileRoots: [], allowHosts: [] },
  lookup,
  ...(fetchImpl ? { fetchImpl } : {}),
  run: async () => '',
});

const args = (url: string): UpdateArgs => ({ url, sha256, version: '2.0.0', manifestSig: 'unused' } as UpdateArgs);

t.test('control: with the global fetch, the rebinding name reaches loopback (the gap as it was)', async (t) => {
  const srv = await releaseServer(t);
  const dns = rebinding();
  const file = await installer(tempDir(t, 'upd-rebind-'), dns.lookup, globalThis.fetch).download(args(srv.url('localhost')), new AbortController().signal);
  t.match(file, /\.tar\.gz$/);
  t.same(srv.hits, ['/agent-2.0.0.tar.gz'], 'the check saw 203.0.113.7, the connection went to 127.0.0.1');
});

t.test('the default fetch checks the address connected to: refused, nothing reaches the server', async (t) => {
  const srv = await releaseServer(t);
  const dns = rebinding();
  const e = await installer(tempDir(t, 'upd-rebind-'), dns.lookup).download(args(srv.url('localhost')), new AbortController().signal).then(() => undefined, (err: unknown) => err);
  t.ok(e instanceof UpdateRefused, 'an UpdateRefused');
  t.equal((e as UpdateRefused).stage, 'download');
  t.match((e as Error).message, /localhost is not a public address/, (e as Error).message);
  t.same(dns.asked, ['localhost', 'localhost'], 'asked twice: the check (public) and the connection (loopback)');
  t.same(srv.hits, [], 'no request reached the server');
});
