import http from 'node:http';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import { checkedLookup, type Lookup, type SourcePolicy } from './sources.js';

// Issue 10's DNS-rebinding gap, closed: the source check resolved a media host, then `fetch`
// resolved it again to connect, and a name with a short TTL could answer a public address to
// the first and 127.0.0.1 to the second. Node's built-in fetch takes no `lookup` (that needs an
// undici dispatcher, a package the agent does not ship), so downloads go through node:http(s)
// with `lookup` set to checkedLookup: the address the socket connects to is the one checked.
// Only what transfer.ts uses of fetch is offered: GET, headers, a signal, no redirects followed
// (transfer.ts follows them itself, each hop through here again), no content decoding (none is
// asked for: media is sent as is).

/** A `fetch` for media downloads whose every connection is checked by the source policy. */
export function pinnedFetch(policy: SourcePolicy, lookup?: Lookup): typeof fetch {
  const checked = checkedLookup(policy, lookup);
  const get = (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : input);
    const signal = init.signal ?? undefined;
    const headers = Object.fromEntries(new Headers(init.headers).entries());
    const mod = url.protocol === 'https:' ? https : url.protocol === 'http:' ? http : undefined;
    if (!mod) return Promise.reject(new TypeError(`unsupported URL scheme: ${url.protocol}`));
    return new Promise<Response>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      // agent: false: a fresh socket per request, so no pooled connection skips the check.
      const req = mod.request(url, { method: 'GET', headers, lookup: checked, agent: false }, (res) => {
        signal?.removeEventListener('abort', onAbort);
        const stop = (): void => void res.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
        signal?.addEventListener('abort', stop, { once: true });
        res.once('close', () => signal?.removeEventListener('abort', stop));
        const status = res.statusCode ?? 0;
        const h = new Headers();
        for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) h.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
        const empty = status === 204 || status === 205 || status === 304;
        if (empty) res.resume();
        try {
          resolve(new Response(empty ? null : bodyOf(res), { status, statusText: res.statusMessage ?? '', headers: h }));
        } catch (e) {
          res.destroy();
          reject(e as Error);
        }
      });
      const onAbort = (): void => void req.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
      signal?.addEventListener('abort', onAbort, { once: true });
      req.once('error', (e) => {
        signal?.removeEventListener('abort', onAbort);
        reject(e);
      });
      req.end();
    });
  };
  return get as typeof fetch;
}

/**
 * The response body as a web stream read on demand. Not Readable.toWeb: it reads ahead into a
 * queue counted in chunks (16,384 of them), so a fast server and a slow card put the whole file
 * in memory, and a connection cut midway discards that queue, losing bytes already received
 * (a resume then starts from less, or from zero). Here one chunk is read per pull, the socket
 * waits for the card, and a cut loses at most what Node's own buffer held.
 */
function bodyOf(res: IncomingMessage): ReadableStream<Uint8Array> {
  const chunks = res[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const r = await chunks.next();
          if (r.done) controller.close();
          else controller.enqueue(new Uint8Array(r.value.buffer, r.value.byteOffset, r.value.byteLength));
        } catch (e) {
          controller.error(e);
        }
      },
      async cancel() {
        res.destroy();
        await chunks.return?.().catch(() => undefined);
      },
    },
    { highWaterMark: 0 },
  );
}
