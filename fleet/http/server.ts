import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CommandResult } from '../../agent/protocol/index.js';
import type { Query } from '../archive/db.js';
import type { HttpConfig } from '../config.js';
import type { Logger } from '../log.js';
import { toCsv } from '../report/format.js';
import { compliance } from '../report/report.js';
import { daysBetween, isDay } from '../report/days.js';
import { TokenGate } from './auth.js';
import { LiveFeed } from './live.js';
import { defaultWebDir, loadWeb, WEB_FILES, type StaticFile } from './static.js';
import { countStates, screen, tiles } from './views.js';

/** What GET /metrics serves (fleet/metrics' FleetMetrics). */
export interface MetricsSource {
  contentType: string;
  render(): Promise<string>;
}

export interface NocDeps {
  archive: { read<T>(fn: (q: Query) => Promise<T>): Promise<T> };
  /** §7 commands (the screenshot button); without it the button answers 503. */
  commands?: { send(deviceId: string, name: string, args: Record<string, unknown> | undefined, timeoutMs: number): Promise<CommandResult | undefined> };
  metrics?: MetricsSource;
  /** The token from `http.tokenFile`; required unless bound to loopback (config.ts checks). */
  token?: string;
  log: Logger;
  webDir?: string;
  now?: () => number;
}

// Scripts, styles and images from this origin only, no inline script or style, no framing: a
// device-supplied string that slipped into markup still could not run.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const SECURITY_HEADERS = { 'content-security-policy': CSP, 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', 'x-frame-options': 'DENY' };
const PAGES: Record<string, string> = { '/': '/static/index.html', '/screen': '/static/screen.html', '/report': '/static/report.html' };
const PNG_MAGIC = '89504e470d0a1a0a';
const MAX_REPORT_DAYS = 93;

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

function pathId(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new HttpError(400, 'bad screen id in the path');
  }
}

/**
 * The NOC page and its JSON API on node:http (docs/fleet.md#the-noc-page): the fleet grid, a
 * screen's page with the screenshot command, the compliance report (JSON and CSV), live updates
 * by Server-Sent Events, and /metrics when a metrics source is given.
 */
export class NocServer {
  private server: Server | undefined;
  private readonly gate: TokenGate;
  private web = new Map<string, StaticFile>();
  readonly live: LiveFeed;
  private readonly now: () => number;

  constructor(private readonly cfg: HttpConfig, private readonly deps: NocDeps) {
    this.gate = new TokenGate(deps.token);
    this.now = deps.now ?? Date.now;
    this.live = new LiveFeed(
      (ids) => this.deps.archive.read(async (q) => {
        const ts = await tiles(q, this.now(), this.cfg.staleAfterSec, ids);
        return ids ? { now: new Date(this.now()).toISOString(), tiles: ts } : { now: new Date(this.now()).toISOString(), tiles: ts, counts: countStates(ts) };
      }),
      { coalesceMs: 200, fullEveryMs: 10_000 },
      (e) => this.deps.log.warn({ err: e.message }, 'live update failed'),
    );
  }

  /** The bound port (with `port: 0`, the one the system chose). */
  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? 0;
  }

  get url(): string {
    const host = this.cfg.bind.includes(':') ? `[${this.cfg.bind}]` : this.cfg.bind;
    return `http://${host}:${this.port}`;
  }

  async start(): Promise<void> {
    this.web = loadWeb(this.deps.webDir ?? defaultWebDir(), WEB_FILES);
    const server = createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        const status = e instanceof HttpError ? e.status : 500;
        if (status === 500) this.deps.log.error({ err: (e as Error).message, url: req.url?.slice(0, 200) }, 'request failed');
        if (!res.headersSent) this.json(res, status, { error: status === 500 ? 'internal error' : (e as Error).message });
        else res.end();
      });
    });
    server.headersTimeout = 20_000;
    server.requestTimeout = 60_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.cfg.port, this.cfg.bind, () => { server.off('error', reject); resolve(); });
    });
    this.server = server;
    this.live.start();
    this.deps.log.info({ url: this.url, token: this.gate.required }, 'NOC page serving');
  }

  async stop(): Promise<void> {
    this.live.stop();
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    await new Promise<void>((resolve) => { s.close(() => resolve()); s.closeAllConnections(); });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://noc.invalid');
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    // Without a token, loopback is the only guard: a page elsewhere that rebinds its DNS name to
    // 127.0.0.1 would be same-origin with us, so the Host must be a loopback name.
    if (!this.gate.required && !/^(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/.test(req.headers.host ?? '')) throw new HttpError(421, 'Host must be a loopback name');
    const pass = this.gate.check(req, url);
    if (!pass.ok) return TokenGate.refuse(res);
    if ('redirect' in pass) {
      res.writeHead(303, { location: pass.redirect, 'set-cookie': pass.cookie, 'cache-control': 'no-store' });
      res.end();
      return;
    }
    const p = url.pathname;
    if (req.method === 'POST') {
      // A form or image elsewhere cannot add this header without a CORS preflight, which we never answer.
      if (req.headers['x-noc-request'] !== '1') throw new HttpError(403, 'missing x-noc-request header');
      const m = /^\/api\/screens\/([^/]+)\/screenshot$/.exec(p);
      if (m) return this.json(res, 200, await this.screenshot(pathId(m[1]!)));
      throw new HttpError(404, 'not found');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'method not allowed');
    const page = this.web.get(PAGES[p] ?? p);
    if (page) {
      res.writeHead(200, { 'content-type': page.type, 'cache-control': 'no-cache', 'content-length': page.body.length });
      res.end(req.method === 'HEAD' ? undefined : page.body);
      return;
    }
    const staleAfterSec = this.cfg.staleAfterSec;
    if (p === '/api/grid') {
      const ts = await this.deps.archive.read((q) => tiles(q, this.now(), staleAfterSec));
      const groups = [...new Set(ts.flatMap((t) => t.groups))].sort();
      return this.json(res, 200, { now: new Date(this.now()).toISOString(), staleAfterSec, groups, counts: countStates(ts), tiles: ts });
    }
    const sm = /^\/api\/screens\/([^/]+)$/.exec(p);
    if (sm) {
      const day = url.searchParams.get('day') ?? undefined;
      if (day !== undefined && !isDay(day)) throw new HttpError(400, 'day must be YYYY-MM-DD');
      const d = await this.deps.archive.read((q) => screen(q, pathId(sm[1]!), this.now(), staleAfterSec, day));
      if (!d) throw new HttpError(404, 'no such screen in the archive');
      return this.json(res, 200, d);
    }
    if (p === '/api/report' || p === '/api/report.csv') {
      const r = await this.deps.archive.read((q) => compliance(q, this.reportQuery(url)));
      if (p === '/api/report') return this.json(res, 200, r);
      const body = toCsv(r);
      res.writeHead(200, { 'content-type': 'text/csv; charset=utf-8', 'content-disposition': `attachment; filename="compliance-${r.from}-${r.to}.csv"`, 'cache-control': 'no-store' });
      res.end(body);
      return;
    }
    if (p === '/api/events') return this.live.open(res);
    if (p === '/metrics' && this.deps.metrics) {
      const text = await this.deps.metrics.render();
      res.writeHead(200, { 'content-type': this.deps.metrics.contentType, 'cache-control': 'no-store' });
      res.end(text);
      return;
    }
    throw new HttpError(404, 'not found');
  }

  private reportQuery(url: URL): { from: string; to: string; group?: string; campaign?: string } {
    const today = new Date(this.now()).toISOString().slice(0, 10);
    const from = url.searchParams.get('from') || today;
    const to = url.searchParams.get('to') || from;
    if (!isDay(from) || !isDay(to)) throw new HttpError(400, 'from and to must be YYYY-MM-DD');
    if (to < from) throw new HttpError(400, 'to is before from');
    if (daysBetween(from, to).length > MAX_REPORT_DAYS) throw new HttpError(400, `at most ${MAX_REPORT_DAYS} days at once`);
    const group = url.searchParams.get('group') || undefined;
    const campaign = url.searchParams.get('campaign') || undefined;
    return { from, to, ...(group ? { group } : {}), ...(campaign ? { campaign } : {}) };
  }

  /** Runs §7 `screenshot` on the screen; the PNG comes back base64 after its magic was checked. */
  private async screenshot(deviceId: string): Promise<{ ok: boolean; png?: string; bytes?: number; error?: string }> {
    const c = this.deps.commands;
    if (!c) throw new HttpError(503, 'commands are not available');
    const known = await this.deps.archive.read((q) => q.get<{ device_id: string }>('SELECT device_id FROM devices WHERE device_id = ?', [deviceId]));
    if (!known) throw new HttpError(404, 'no such screen in the archive');
    const r = await c.send(deviceId, 'screenshot', undefined, this.cfg.commandTimeoutSec * 1000);
    if (!r) return { ok: false, error: `no answer within ${this.cfg.commandTimeoutSec} s (is the screen online?)` };
    if (!r.ok) return { ok: false, error: r.error.slice(0, 500) };
    const png = (r.result as { png?: unknown } | null | undefined)?.png;
    const bytes = typeof png === 'string' ? Buffer.from(png, 'base64') : Buffer.alloc(0);
    if (bytes.subarray(0, 8).toString('hex') !== PNG_MAGIC) return { ok: false, error: 'the answer holds no PNG' };
    this.deps.log.info({ deviceId, bytes: bytes.length }, 'screenshot');
    return { ok: true, png: bytes.toString('base64'), bytes: bytes.length };
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }
}
