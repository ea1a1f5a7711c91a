import net from 'node:net';
import { waitFor } from './wait.js';

/**
 * A TCP port free right now on 127.0.0.1. Bind to 0, read, close: a tiny race with other
 * processes remains, which is why startBroker retries on a bind failure.
 */
export async function freePort(): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on the port, or rejects after `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs = 5000): Promise<void> {
  const accepts = (): Promise<boolean> =>
    new Promise<boolean>((resolve) => {
      const s = net.connect({ port, host: '127.0.0.1' });
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => { s.destroy(); resolve(false); });
    });
  await waitFor(`something listening on 127.0.0.1:${port}`, accepts, timeoutMs);
}
