import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Teardown } from './tmp.js';

export interface Served {
  body: Buffer;
  /** Honour `Range: bytes=N-` with a 206 (default true). */
  ranges?: boolean;
  /** Send this many bytes of the first N requests, then cut the connection. */
  dropAfter?: number;
  dropTimes?: number;
  status?: number;
  /** Hold the response until release() (to observe concurrency). */
  hold?: boolean;
}

export interface SeenRequest {
  path: string;
  range: string | undefined;
}

export interface MediaServer {
  url(p: string): string;
  serve(p: string, s: Served): void;
  requests: SeenRequest[];
  bytesSent: number;
  inFlight: number;
  maxInFlight: number;
  release(): void;
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** A real HTTP server on 127.0.0.1 (ephemeral port) serving in-memory files, with and without Range. */
export async function startMediaServer(t: Teardown): Promise<MediaServer> {
  const routes = new Map<string, Served & { served: number }>();
  const held: Array<() => void> = [];
  const state: MediaServer = {
    url: (p) => `http://127.0.0.1:${(server.address() as AddressInfo).port}${p}`,
    serve: (p, s) => void routes.set(p, { ...s, served: 0 }),
    requests: [],
    bytesSent: 0,
    inFlight: 0,
    maxInFlight: 0,
    release: () => held.splice(0).forEach((f) => f()),
  };
  const server = http.createServer((req, res) => {
    const p = req.url ?? '/';
    state.requests.push({ path: p, range: req.headers.range });
    const r = routes.get(p);
    if (!r) {
      res.writeHead(404).end('not found');
      return;
    }
    state.inFlight++;
    state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
    res.on('close', () => state.inFlight--);
    const go = (): void => {
      const n = r.served++;
      if (r.status) {
        res.writeHead(r.status).end('no');
        return;
      }
      let start = 0;
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      if (m && r.ranges !== false) {
        start = Number(m[1]);
        if (start >= r.body.length) {
          res.writeHead(416, { 'content-range': `bytes */${r.body.length}` }).end();
          return;
        }
        res.writeHead(206, { 'content-length': r.body.length - start, 'content-range': `bytes ${start}-${r.body.length - 1}/${r.body.length}` });
      } else {
        res.writeHead(200, { 'content-length': r.body.length, ...(r.ranges === false ? {} : { 'accept-ranges': 'bytes' }) });
      }
      const rest = r.body.subarray(start);
      if (r.dropAfter !== undefined && n < (r.dropTimes ?? 1)) {
        const part = rest.subarray(0, r.dropAfter);
        state.bytesSent += part.length;
        res.write(part, () => setTimeout(() => res.socket?.destroy(), 20));
        return;
      }
      state.bytesSent += rest.length;
      res.end(rest);
    };
    if (r.hold) held.push(go);
    else go();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        state.release();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return state;
}
