import type { KeyObject } from 'node:crypto';
import { z } from 'zod';
import { openEnvelope, readKeyEntry, type KeyLookup, type KeyRing } from './envelope.js';
import { formatIssues, ID_RE, idSchema, instantSchema } from './schemas.js';

// Who may sign what (PROTOCOL §9 v1.1, issue 10 items 2-4). Pure: every time comes in as `now`.
//
// Precedence: `security.assignmentKeys` (the config) are full-scope operator keys: any kind, any
// target, no expiry. The key set on `{p}/keys`, signed by a `security.rootKeys` key, adds scoped
// operator keys (targets, kinds, expiresAt). A root key signs key sets and nothing else, so an
// offline root key never has to be used for day-to-day work. A key id is one key: the config
// refuses duplicates across both lists, and a key set may not redefine a configured id.

/** Kinds of signed documents a scope names. Unknown names are kept (a newer tool may scope `alert`). */
export type DocKind = 'assignment' | 'override' | 'cmd' | 'alert' | 'update';

/** A signed document's issuedAt may be this far ahead of the screen's clock (clock skew), no more. */
export const MAX_ISSUED_AHEAD_MS = 5 * 60_000;
/** A version may be at most this far above the current Unix time in seconds (signagectl uses seconds). */
export const MAX_VERSION_AHEAD_SEC = 86_400;
/** A signed command's expiresAt is at most this long after its issuedAt. */
export const MAX_COMMAND_LIFETIME_MS = 24 * 3_600_000;

export interface ScopedKey {
  keyId: string;
  key: KeyObject;
  targets: readonly string[];
  kinds: readonly string[];
  expiresAt: number;
}

export interface KeySet {
  version: number;
  issuedAt: string;
  /** The root key id that signed it. */
  signedBy: string;
  keys: ReadonlyMap<string, ScopedKey>;
}

/** What the agent trusts in signed mode. */
export interface Trust {
  operators: KeyRing;
  roots: KeyRing;
  keySet?: KeySet | undefined;
}

/** Signed mode is on when any key is configured; with root keys alone nothing verifies until a key set arrives. */
export function trustOf(operators: KeyRing | undefined, roots: KeyRing | undefined): Trust | undefined {
  if (!operators && !roots) return undefined;
  return { operators: operators ?? new Map(), roots: roots ?? new Map() };
}

/** A plain ring (tools, tests) as a Trust. */
export function asTrust(t: Trust | KeyRing | undefined): Trust | undefined {
  if (t === undefined) return undefined;
  return t instanceof Map ? { operators: t, roots: new Map() } : (t as Trust);
}

/** `*`, `device/*`, `group/*`, `device/ID`, `group/G`, `fleet` (the §10 fleet alert). */
const TARGET_PATTERN_RE = /^(\*|fleet|(device|group)\/\*|(device|group)\/[A-Za-z0-9][A-Za-z0-9._-]{0,63})$/;

export function scopeCovers(patterns: readonly string[], target: string): boolean {
  return patterns.some((p) => p === '*' || p === target || (p.endsWith('/*') && target.startsWith(p.slice(0, -1))));
}

/** The key that may verify a document of `kind` for `target` at `now`, or why there is none. */
export function signingKeyLookup(trust: Trust, target: string, kind: DocKind, now: number): KeyLookup {
  return (keyId) => {
    const op = trust.operators.get(keyId);
    if (op) return op;
    if (trust.roots.has(keyId)) return `keyId "${keyId}" is a root key: it signs key sets only`;
    const k = trust.keySet?.keys.get(keyId);
    if (!k) return `unknown keyId "${keyId.slice(0, 64)}"`;
    if (k.expiresAt <= now) return `keyId "${keyId}" expired at ${new Date(k.expiresAt).toISOString()}`;
    if (!k.kinds.includes(kind)) return `keyId "${keyId}" is not scoped for ${kind} (kinds: ${k.kinds.join(',')})`;
    if (!scopeCovers(k.targets, target)) return `keyId "${keyId}" is not scoped for ${target} (targets: ${k.targets.join(',')})`;
    return k.key;
  };
}

/** Why a version cannot be taken (poisoning: a huge version would block every later one), or undefined. */
export function versionProblem(version: number, now: number): string | undefined {
  const limit = Math.floor(now / 1000) + MAX_VERSION_AHEAD_SEC;
  return version > limit ? `version ${version} is more than a day ahead of the current Unix time in seconds (limit ${limit}): refused, it would block every later version` : undefined;
}

/** Why a signed document's issuedAt cannot be taken, or undefined. */
export function issuedAtProblem(issuedAt: string | undefined, now: number): string | undefined {
  if (issuedAt === undefined) return 'signed document must carry issuedAt';
  const at = Date.parse(issuedAt);
  if (!(at <= now + MAX_ISSUED_AHEAD_MS)) return `issuedAt ${issuedAt} is more than ${MAX_ISSUED_AHEAD_MS / 60_000} min ahead of this screen's clock`;
  return undefined;
}

export const keySetEntrySchema = z.object({
  keyId: idSchema,
  /** base64 of the raw 32-byte Ed25519 public key, or PEM SPKI (as in the config). */
  publicKey: z.string().min(1).max(2048),
  scopes: z.object({
    targets: z.array(z.string().regex(TARGET_PATTERN_RE, 'must be *, device/*, group/*, device/ID, group/G or fleet')).min(1).max(256),
    kinds: z.array(z.string().regex(ID_RE)).min(1).max(16),
  }),
  expiresAt: instantSchema,
});

export const keySetSchema = z
  .object({
    version: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
    issuedAt: instantSchema,
    keys: z.array(keySetEntrySchema).max(256),
  })
  .refine((s) => new Set(s.keys.map((k) => k.keyId)).size === s.keys.length, { message: 'key ids must be unique', path: ['keys'] });

export type KeySetDoc = z.infer<typeof keySetSchema>;

/**
 * The key set document (`{p}/keys`): a §9 envelope signed by a root key. Pure and total. `taken`
 * are the configured key ids, which a key set may not redefine.
 */
export function decodeKeySet(payload: Uint8Array, roots: KeyRing, taken: ReadonlySet<string>, now: number): { ok: true; set: KeySet; doc: KeySetDoc } | { ok: false; reason: string } {
  try {
    if (payload.length === 0) return { ok: false, reason: 'empty payload (a key set is replaced by a newer one, never cleared)' };
    if (payload.length > 256 * 1024) return { ok: false, reason: `payload too large: ${payload.length} bytes > 262144` };
    let env: unknown;
    try {
      env = JSON.parse(Buffer.from(payload).toString('utf8'));
    } catch {
      return { ok: false, reason: 'payload is not JSON' };
    }
    const opened = openEnvelope(env, (keyId) => roots.get(keyId) ?? `keyId "${keyId.slice(0, 64)}" is not a root key (security.rootKeys)`);
    if (!opened.ok) return opened;
    let value: unknown;
    try {
      value = JSON.parse(opened.bytes.toString('utf8'));
    } catch {
      return { ok: false, reason: 'signed payload is not JSON' };
    }
    const r = keySetSchema.safeParse(value);
    if (!r.success) return { ok: false, reason: `invalid: ${formatIssues(r.error).join('; ').slice(0, 600)}` };
    const doc = r.data;
    const why = issuedAtProblem(doc.issuedAt, now) ?? versionProblem(doc.version, now);
    if (why) return { ok: false, reason: why };
    const keys = new Map<string, ScopedKey>();
    for (const [i, k] of doc.keys.entries()) {
      if (taken.has(k.keyId)) return { ok: false, reason: `keys.${i}.keyId: "${k.keyId}" is a configured key; a key set cannot redefine it` };
      const e = readKeyEntry(`${k.keyId}:${k.publicKey}`);
      if ('problem' in e) return { ok: false, reason: `keys.${i}.publicKey: ${e.problem}` };
      // A root key listed under another id would sign documents after all.
      if ([...roots.values()].some((r) => r.equals(e.key))) return { ok: false, reason: `keys.${i}.publicKey: is a root key; a root key signs key sets only` };
      keys.set(k.keyId, { keyId: k.keyId, key: e.key, targets: k.scopes.targets, kinds: k.scopes.kinds, expiresAt: Date.parse(k.expiresAt) });
    }
    return { ok: true, doc, set: { version: doc.version, issuedAt: doc.issuedAt, signedBy: opened.keyId, keys } };
  } catch (e) {
    return { ok: false, reason: `undecodable: ${String((e as Error)?.message ?? e).slice(0, 200)}` };
  }
}
