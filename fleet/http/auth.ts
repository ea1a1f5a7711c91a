import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** The cookie the page keeps the token in once it was opened with `?token=`. */
export const TOKEN_COOKIE = 'noc_token';

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Every `name=value` of a Cookie header (the last one of a name wins). */
export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const value = part.slice(i + 1).trim();
    try {
      out.set(part.slice(0, i).trim(), decodeURIComponent(value));
    } catch {
      out.set(part.slice(0, i).trim(), value);
    }
  }
  return out;
}

export type GateResult = { ok: true } | { ok: false } | { ok: true; redirect: string; cookie: string };

/**
 * The access token, when one is configured: every request carries it as `Authorization: Bearer`
 * or the cookie. `?token=` on a page sets the cookie and redirects to the same URL without it, so
 * the token does not stay in the address bar or the history. Compared in constant time (both
 * sides hashed first, so the comparison does not leak the length either).
 */
export class TokenGate {
  private readonly want: Buffer | undefined;

  constructor(token: string | undefined) {
    if (token !== undefined && token.length < 16) throw new Error('the http token must be at least 16 characters');
    this.want = token === undefined ? undefined : digest(token);
  }

  get required(): boolean {
    return this.want !== undefined;
  }

  private matches(candidate: string | undefined): boolean {
    if (!this.want || candidate === undefined) return false;
    return timingSafeEqual(digest(candidate), this.want);
  }

  check(req: IncomingMessage, url: URL): GateResult {
    if (!this.want) return { ok: true };
    const auth = req.headers.authorization;
    const bearer = auth?.startsWith('Bearer ') ? auth.slice(7).trim() : undefined;
    if (this.matches(bearer) || this.matches(parseCookies(req.headers.cookie).get(TOKEN_COOKIE))) return { ok: true };
    const q = url.searchParams.get('token');
    if (q !== null && req.method === 'GET' && this.matches(q)) {
      const clean = new URL(url.href);
      clean.searchParams.delete('token');
      return { ok: true, redirect: `${clean.pathname}${clean.search}`, cookie: `${TOKEN_COOKIE}=${encodeURIComponent(q)}; HttpOnly; SameSite=Strict; Path=/` };
    }
    return { ok: false };
  }

  /** 401 with no detail (what was wrong about a token is nobody's business). */
  static refuse(res: ServerResponse): void {
    res.writeHead(401, { 'content-type': 'text/plain; charset=utf-8', 'www-authenticate': 'Bearer realm="signage-fleet"', 'cache-control': 'no-store' });
    res.end('token required: open the page with ?token=… or send Authorization: Bearer …\n');
  }
}
