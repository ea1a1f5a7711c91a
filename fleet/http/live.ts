import type { ServerResponse } from 'node:http';

/**
 * Server-Sent Events to every open page. The archive tells `changed(ids)` after each committed
 * batch; ids are gathered for `coalesceMs` and then `render(ids)` builds one `tiles` event for all
 * clients (one archive read per push, however many pages are open). Every `fullEveryMs` the whole
 * grid goes out, because a heartbeat that stops coming (stale) changes no row. A comment line every
 * 15 s keeps proxies from closing an idle stream.
 */
export class LiveFeed {
  private readonly clients = new Set<ServerResponse>();
  private pending = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private fullTimer: NodeJS.Timeout | undefined;
  private keepTimer: NodeJS.Timeout | undefined;
  private pushing = false;

  constructor(
    private readonly render: (ids: readonly string[] | undefined) => Promise<unknown>,
    private readonly opts: { coalesceMs: number; fullEveryMs: number },
    private readonly onError: (e: Error) => void,
  ) {}

  start(): void {
    this.fullTimer = setInterval(() => { if (this.clients.size > 0) void this.push(undefined); }, this.opts.fullEveryMs);
    this.keepTimer = setInterval(() => { for (const c of this.clients) c.write(': keepalive\n\n'); }, 15_000);
  }

  get size(): number {
    return this.clients.size;
  }

  /** Opens an event stream on `res` (the caller checked the token). */
  open(res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    res.write('retry: 2000\n\n');
    this.clients.add(res);
    res.on('close', () => this.clients.delete(res));
  }

  /** After a batch committed: these screens' rows changed. */
  changed(ids: Iterable<string>): void {
    if (this.clients.size === 0) return;
    for (const id of ids) this.pending.add(id);
    if (!this.timer && this.pending.size > 0) this.timer = setTimeout(() => { this.timer = undefined; void this.flush(); }, this.opts.coalesceMs);
  }

  private async flush(): Promise<void> {
    if (this.pushing) { this.changed([]); return; }
    const ids = [...this.pending];
    this.pending = new Set();
    if (ids.length > 0) await this.push(ids);
    if (this.pending.size > 0) this.changed([]);
  }

  private async push(ids: readonly string[] | undefined): Promise<void> {
    this.pushing = true;
    try {
      const data = JSON.stringify(await this.render(ids));
      const msg = `event: ${ids ? 'tiles' : 'grid'}\ndata: ${data}\n\n`;
      for (const c of this.clients) c.write(msg);
    } catch (e) {
      this.onError(e as Error);
    } finally {
      this.pushing = false;
    }
  }

  stop(): void {
    clearTimeout(this.timer);
    clearInterval(this.fullTimer);
    clearInterval(this.keepTimer);
    for (const c of this.clients) c.end();
    this.clients.clear();
  }
}
