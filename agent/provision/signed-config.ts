import type { KeyObject } from 'node:crypto';
import type { Config } from '../config/config.js';
import { openEnvelope } from '../protocol/envelope.js';

// Issue 10 item 7: the boot partition is a FAT file system anyone with the case open can write.
// Once a box has keys (security.assignmentKeys or rootKeys in its installed config), a new
// config dropped there must be a §9 envelope signed by one of those keys, naming this box
// (`target: "device/{id}"`, its current deviceId) and an `issuedAt` later than the last signed
// config it took, so an old signed card cannot roll a box back (to keys since revoked). Without
// keys a box takes plain JSON as before, and a signed card is unwrapped (nothing to check it with).
// The signed document is the config itself with `target` and `issuedAt` beside its keys, as
// signagectl's signFor makes every signed document; both are removed before the config is read.

export interface BoxKeys {
  ring: ReadonlyMap<string, KeyObject>;
  deviceId: string;
}

/** The keys a new boot config must be signed by, from the installed config; undefined: none. */
export function boxKeysOf(installed: Config | undefined): BoxKeys | undefined {
  if (!installed) return undefined;
  const ring = new Map<string, KeyObject>([...(installed.security.assignmentKeys ?? []), ...(installed.security.rootKeys ?? [])]);
  return ring.size > 0 ? { ring, deviceId: installed.deviceId } : undefined;
}

export type Unsealed = { ok: true; text: string; signed?: { keyId: string; issuedAt: string } } | { ok: false; problem: string };

const NEEDS_SIGNATURE =
  'this box has security keys (security.assignmentKeys or security.rootKeys), so a new config must be signed by one of them: prepare-card --key FILE or signagectl sign-config --key FILE';

function looksSealed(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && typeof (v as Record<string, unknown>).payload === 'string' && typeof (v as Record<string, unknown>).sig === 'string';
}

/**
 * The plain config text to validate and install, or why the dropped file may not be taken.
 * `lastIssuedAt`: the issuedAt of the signed config installed last, if any. issuedAt is not
 * checked against the clock: this runs before NTP, on a Pi whose clock reads its last shutdown,
 * so a card signed since would look "ahead". Order against the last signed config is what stops
 * a replayed card.
 */
export function unsealBootConfig(text: string, keys: BoxKeys | undefined, lastIssuedAt: string | undefined): Unsealed {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    // Plain mode reports it with the parser's own words (validate); signed mode says what it needs.
    return keys ? { ok: false, problem: `signage-agent.json: not a signed envelope (not JSON: ${(e as Error).message}); ${NEEDS_SIGNATURE}` } : { ok: true, text };
  }
  if (!looksSealed(raw)) return keys ? { ok: false, problem: `signage-agent.json: plain JSON refused; ${NEEDS_SIGNATURE}` } : { ok: true, text };
  let bytes: Buffer;
  let keyId = '';
  if (keys) {
    const opened = openEnvelope(raw, keys.ring);
    if (!opened.ok) return { ok: false, problem: `signage-agent.json: ${opened.reason} (this box trusts ${[...keys.ring.keys()].join(', ')})` };
    bytes = opened.bytes;
    keyId = opened.keyId;
  } else {
    bytes = Buffer.from(raw.payload as string, 'base64');
  }
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    return { ok: false, problem: `signage-agent.json: the signed payload is not JSON: ${(e as Error).message}` };
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return { ok: false, problem: 'signage-agent.json: the signed payload is not a JSON object' };
  const { target, issuedAt, ...config } = doc as Record<string, unknown>;
  const plain = JSON.stringify(config, null, 2) + '\n';
  if (!keys) return { ok: true, text: plain };
  const want = `device/${keys.deviceId}`;
  if (target !== want) return { ok: false, problem: `signage-agent.json: signed for ${typeof target === 'string' ? `"${target.slice(0, 80)}"` : 'no target'}, this box is "${want}"` };
  if (typeof issuedAt !== 'string' || Number.isNaN(Date.parse(issuedAt))) return { ok: false, problem: 'signage-agent.json: a signed config must carry issuedAt (an ISO time)' };
  if (lastIssuedAt !== undefined && !(Date.parse(issuedAt) > Date.parse(lastIssuedAt))) {
    return { ok: false, problem: `signage-agent.json: issuedAt ${issuedAt} is not after the installed signed config's (${lastIssuedAt}): an old card is not taken again` };
  }
  return { ok: true, text: plain, signed: { keyId, issuedAt } };
}

/** The config inside a (possibly signed) dropped file, for the redacted `.rejected` copy. */
export function plainOf(text: string): string {
  try {
    const raw: unknown = JSON.parse(text);
    if (looksSealed(raw)) return Buffer.from(raw.payload as string, 'base64').toString('utf8');
  } catch {
    // Not JSON: redact() works on the text as it is.
  }
  return text;
}
