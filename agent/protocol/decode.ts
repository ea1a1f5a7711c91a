import type { z } from 'zod';
import { formatIssues } from './schemas.js';
import { openEnvelope, type KeyRing } from './envelope.js';
import { asTrust, issuedAtProblem, signingKeyLookup, type DocKind, type Trust } from './trust.js';

// The one path every inbound document takes: size, UTF-8, JSON, (§9 envelope), schema, target.
// Total: returns a reason instead of throwing, whatever the bytes.

export const MAX_PAYLOAD_BYTES = 256 * 1024;

/** `keyId`: the key that signed it (signed mode), for the `applied` event. */
export type Decoded<T> = { ok: true; doc: T; keyId?: string } | { ok: false; reason: string };

const utf8 = new TextDecoder('utf-8', { fatal: true });

function parseJson(bytes: Uint8Array, what: string): { ok: true; value: unknown } | { ok: false; reason: string } {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return { ok: false, reason: `${what} is not UTF-8` };
  }
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (e) {
    return { ok: false, reason: `${what} is not JSON: ${clip((e as Error).message, 120)}` };
  }
}

export function clip(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}

/**
 * @param target `device/{id}` or `group/{g}`: the topic's target. A document naming another
 *   target is rejected; with keys, naming it is required (§9 anti-replay across screens).
 * @param trust the keys (signed mode) or undefined (plain JSON). A plain ring is full-scope keys.
 * @param kind and `now` decide which keys may sign it (scope, expiry) and whether its issuedAt
 *   is believable; both matter in signed mode only.
 */
export function decodeDocument<S extends z.ZodType>(payload: Uint8Array, schema: S, target: string, trustOrKeys: Trust | KeyRing | undefined, kind: DocKind, now: number): Decoded<z.output<S>> {
  try {
    const trust = asTrust(trustOrKeys);
    if (payload.length > MAX_PAYLOAD_BYTES) return { ok: false, reason: `payload too large: ${payload.length} bytes > ${MAX_PAYLOAD_BYTES}` };
    if (payload.length === 0) return { ok: false, reason: 'empty payload' };
    const outer = parseJson(payload, 'payload');
    if (!outer.ok) return outer;
    let value = outer.value;
    let keyId: string | undefined;
    if (trust) {
      const opened = openEnvelope(value, signingKeyLookup(trust, target, kind, now));
      if (!opened.ok) return opened;
      const inner = parseJson(opened.bytes, 'signed payload');
      if (!inner.ok) return inner;
      value = inner.value;
      keyId = opened.keyId;
    }
    const r = schema.safeParse(value);
    if (!r.success) return { ok: false, reason: `invalid: ${clip(formatIssues(r.error).join('; '), 600)}` };
    const doc = r.data as z.output<S>;
    const named = (doc as { target?: unknown }).target;
    if (trust && named === undefined) return { ok: false, reason: `signed document must name its target "${target}"` };
    if (named !== undefined && named !== target) return { ok: false, reason: `target "${String(named)}" does not match topic target "${target}"` };
    if (trust) {
      const why = issuedAtProblem((doc as { issuedAt?: string }).issuedAt, now);
      if (why) return { ok: false, reason: why };
    }
    return keyId === undefined ? { ok: true, doc } : { ok: true, doc, keyId };
  } catch (e) {
    // Belt and braces: nothing above should throw, but a decoder must never take the agent down.
    return { ok: false, reason: `undecodable: ${clip(String((e as Error)?.message ?? e), 200)}` };
  }
}
