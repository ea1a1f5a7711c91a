import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { ID_RE } from './schemas.js';

// PROTOCOL §9 signed envelopes: {"payload":"<base64 JSON bytes>","sig":"<base64 Ed25519>","keyId":"..."}.
//
// A key entry in security.assignmentKeys is `[keyId:]KEY` where KEY is either the base64 of the raw
// 32-byte Ed25519 public key or a PEM "PUBLIC KEY" (SPKI). Without an explicit keyId, the key's id is
// the first 16 hex digits of SHA-256 over the raw 32 bytes, so operators need not invent names.

const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const B64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** A key handed to parseKeyRing that cannot be used; `problems` names each bad entry. */
export class KeyRingError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'KeyRingError';
  }
}

export interface TrustedKey {
  keyId: string;
  key: KeyObject;
}

export type KeyRing = ReadonlyMap<string, KeyObject>;

/** Raw 32-byte key → default key id. */
export function keyIdOf(raw: Buffer): string {
  return createHash('sha256').update(raw).digest('hex').slice(0, 16);
}

/** One entry → its key, or what is wrong with it (without naming where it stands). */
export function readKeyEntry(entry: string): TrustedKey | { problem: string } {
  let id: string | undefined;
  let body = entry.trim();
  const colon = body.indexOf(':');
  if (colon > 0 && !body.startsWith('-----')) {
    id = body.slice(0, colon);
    body = body.slice(colon + 1).trim();
    if (!ID_RE.test(id)) return { problem: `key id "${id}" must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$` };
  }
  let key: KeyObject;
  try {
    if (body.startsWith('-----BEGIN')) {
      key = createPublicKey({ key: body, format: 'pem' });
    } else {
      const raw = Buffer.from(body, 'base64');
      if (!B64_RE.test(body) || raw.length !== 32) throw new Error('not base64 of 32 bytes');
      key = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: 'der', type: 'spki' });
    }
  } catch (e) {
    return { problem: `not an Ed25519 public key (base64 of the raw 32 bytes, or PEM SPKI): ${(e as Error).message}` };
  }
  if (key.asymmetricKeyType !== 'ed25519') return { problem: `key type is ${key.asymmetricKeyType}, must be ed25519` };
  const der = key.export({ format: 'der', type: 'spki' });
  return { keyId: id ?? keyIdOf(der.subarray(der.length - 32)), key };
}

/**
 * Every entry read; `problems` name each bad one by its index. No entries: no ring (plain JSON
 * mode). The config schema calls this, so a bad key is reported with every other config problem.
 */
export function readKeyRing(entries: readonly string[]): { ring: KeyRing | undefined; problems: Array<{ index: number; problem: string }> } {
  const problems: Array<{ index: number; problem: string }> = [];
  const ring = new Map<string, KeyObject>();
  const at = new Map<string, number>();
  entries.forEach((e, index) => {
    const k = readKeyEntry(e);
    if ('problem' in k) problems.push({ index, problem: k.problem });
    // Two entries with one id: which one verifies would depend on the order, so neither is taken silently.
    else if (at.has(k.keyId)) problems.push({ index, problem: `duplicate key id "${k.keyId}" (also entry ${at.get(k.keyId)})` });
    else {
      ring.set(k.keyId, k.key);
      at.set(k.keyId, index);
    }
  });
  return { ring: entries.length > 0 ? ring : undefined, problems };
}

/** For tools and tests holding known-good keys (the agent's ring comes from the config schema); throws KeyRingError naming every bad entry. */
export function parseKeyRing(entries: readonly string[]): KeyRing | undefined {
  const { ring, problems } = readKeyRing(entries);
  if (problems.length > 0) throw new KeyRingError(problems.map((p) => `security.assignmentKeys.${p.index}: ${p.problem}`));
  return ring;
}

export type Opened = { ok: true; bytes: Buffer; keyId: string } | { ok: false; reason: string };

/** A key id → the key that may verify this document, or why none may (unknown, out of scope, expired). */
export type KeyLookup = (keyId: string) => KeyObject | string;

/** The lookup of a plain ring: every key in it may sign anything. */
export function ringLookup(keys: KeyRing): KeyLookup {
  return (keyId) => keys.get(keyId) ?? `unknown keyId "${keyId.slice(0, 64)}"`;
}

/** Checks an already JSON-parsed envelope and returns the signed document's bytes. Never throws. */
export function openEnvelope(env: unknown, keys: KeyRing | KeyLookup): Opened {
  if (typeof env !== 'object' || env === null || Array.isArray(env)) return { ok: false, reason: 'signed envelope required: {"payload","sig","keyId"}' };
  const o = env as Record<string, unknown>;
  // Other envelope fields are ignored (PROTOCOL v1.1 §3 forward compatibility): they are not
  // covered by the signature, so nothing may depend on them anyway.
  if (typeof o.payload !== 'string' || typeof o.sig !== 'string' || typeof o.keyId !== 'string') {
    return { ok: false, reason: 'signed envelope required: {"payload","sig","keyId"} as strings' };
  }
  const key = (typeof keys === 'function' ? keys : ringLookup(keys))(o.keyId);
  if (typeof key === 'string') return { ok: false, reason: key };
  if (!B64_RE.test(o.payload)) return { ok: false, reason: 'envelope payload is not base64' };
  if (!B64_RE.test(o.sig)) return { ok: false, reason: 'envelope sig is not base64' };
  const bytes = Buffer.from(o.payload, 'base64');
  const sig = Buffer.from(o.sig, 'base64');
  if (sig.length !== 64) return { ok: false, reason: 'envelope sig is not 64 bytes' };
  let good = false;
  try {
    good = verify(null, bytes, key, sig);
  } catch {
    good = false;
  }
  return good ? { ok: true, bytes, keyId: o.keyId } : { ok: false, reason: `bad signature for keyId "${o.keyId.slice(0, 64)}"` };
}

/**
 * The §9 envelope of `doc` signed with an Ed25519 private key: the one signing function of every
 * publishing tool (signagectl's assign, override, cmd, keys publish; alerts and updates later).
 * The bytes signed are exactly the JSON text carried in `payload`, so no canonical form is needed.
 */
export function sealEnvelope(doc: unknown, privateKey: KeyObject, keyId: string): string {
  const bytes = Buffer.from(JSON.stringify(doc), 'utf8');
  return JSON.stringify({ payload: bytes.toString('base64'), sig: sign(null, bytes, privateKey).toString('base64'), keyId });
}

/** The base64 of a public (or private) Ed25519 key's raw 32 public bytes, as config entries take it. */
export function rawPublicKeyOf(key: KeyObject): Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const der = pub.export({ format: 'der', type: 'spki' });
  return der.subarray(der.length - 32);
}

/**
 * An operator's signing key from its PEM (PKCS#8 Ed25519, as `signagectl keygen` writes ID.key)
 * and the text of the ID.pub beside it, if any ("ID:base64"): the id is `keyId` when given, else
 * the .pub's when it holds this very key, else derived (keyIdOf). Pure: the callers read the files.
 */
export function signingKeyOf(pem: Buffer | string, pubBeside: string | undefined, keyId?: string): { key: KeyObject; keyId: string } | { problem: string } {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (e) {
    return { problem: `not a private key: ${(e as Error).message}` };
  }
  if (key.asymmetricKeyType !== 'ed25519') return { problem: `an ${key.asymmetricKeyType ?? 'unknown'} key; it must be Ed25519 (signagectl keygen)` };
  const raw = rawPublicKeyOf(key);
  const beside = pubBeside === undefined ? null : /^([A-Za-z0-9][A-Za-z0-9._-]{0,63}):([A-Za-z0-9+/=]+)\s*$/.exec(pubBeside);
  return { key, keyId: keyId ?? (beside && beside[2] === raw.toString('base64') ? beside[1]! : keyIdOf(raw)) };
}

/** Where keygen puts the public half of ID.key: ID.pub; undefined for a file not named *.key. */
export function pubFileBeside(keyFile: string): string | undefined {
  const pub = keyFile.replace(/\.key$/, '') + '.pub';
  return pub === keyFile ? undefined : pub;
}
