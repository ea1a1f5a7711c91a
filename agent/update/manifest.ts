import { createHash, sign, verify, type KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import path from 'node:path';
import type { KeyLookup } from '../protocol/envelope.js';

// A release (issue 13 item 1) is a tree: dist/, production node_modules, package.json, the units.
// Its manifest names every file with its sha256 and mode and every symlink with its target, and
// the operator signs the manifest's exact bytes with an Ed25519 key (the §9 key format of
// `signagectl keygen`). The release script, the agent's installer and the tests all use these
// functions, so "verified" means the same thing everywhere.

export const MANIFEST_FILE = 'manifest.json';
export const SIGNATURE_FILE = 'manifest.sig';
export const MANIFEST_FORMAT = 'signage-agent-release/1';

/** A release version is also a directory name under releases/: no slash, no dot-only name, not a link's name. */
export const VERSION_RE = /^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$/;
const RESERVED = new Set(['current', 'previous']);

export function releaseVersionProblem(v: string): string | undefined {
  if (!VERSION_RE.test(v) || RESERVED.has(v)) return `version "${v.slice(0, 70)}" must match ${VERSION_RE.source} and not be current/previous`;
  return undefined;
}

export type Entry = { sha256: string; size: number; mode: number } | { link: string };

export interface ReleaseManifest {
  format: typeof MANIFEST_FORMAT;
  version: string;
  createdAt: string;
  /** What `process.arch` the native parts (sqlite3) were built for: the Pi is arm64. */
  arch: string;
  /** The Node ABI the native parts were built for (process.versions.modules). */
  nodeAbi: string;
  files: Record<string, Entry>;
}

async function fileSha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 256 * 1024 }) as AsyncIterable<Buffer>) h.update(chunk);
  return h.digest('hex');
}

/** Every entry of a tree (relative POSIX paths), the manifest and signature left out. */
export async function entriesOf(root: string): Promise<Record<string, Entry>> {
  const out: Record<string, Entry> = {};
  const walk = async (dir: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const abs = path.join(dir, name);
      const rel = path.relative(root, abs).split(path.sep).join('/');
      if (rel === MANIFEST_FILE || rel === SIGNATURE_FILE) continue;
      const st = await lstat(abs);
      if (st.isSymbolicLink()) out[rel] = { link: await readlink(abs) };
      else if (st.isDirectory()) await walk(abs);
      else if (st.isFile()) out[rel] = { sha256: await fileSha256(abs), size: st.size, mode: st.mode & 0o111 ? 0o755 : 0o644 };
      else throw new Error(`${rel}: neither a file, a directory nor a symlink`);
    }
  };
  await walk(root);
  return out;
}

/** A symlink may only point inside the release (node_modules/.bin links do). */
export function linkProblem(rel: string, target: string): string | undefined {
  if (path.posix.isAbsolute(target)) return `${rel}: symlink to an absolute path ${target}`;
  const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(rel), target));
  if (resolved === '..' || resolved.startsWith('../')) return `${rel}: symlink leaves the release (${target})`;
  return undefined;
}

export async function manifestOf(root: string, a: { version: string; arch: string; nodeAbi: string; now: number }): Promise<ReleaseManifest> {
  const files = await entriesOf(root);
  for (const [rel, e] of Object.entries(files)) {
    const p = 'link' in e ? linkProblem(rel, e.link) : undefined;
    if (p) throw new Error(p);
  }
  return { format: MANIFEST_FORMAT, version: a.version, createdAt: new Date(a.now).toISOString(), arch: a.arch, nodeAbi: a.nodeAbi, files };
}

/** The manifest file's bytes: what is signed, byte for byte. */
export function manifestBytes(m: ReleaseManifest): Buffer {
  return Buffer.from(JSON.stringify(m, null, 1) + '\n', 'utf8');
}

/** `KEYID:BASE64SIG`: the manifest.sig line and the update command's `manifestSig`. */
export function signManifest(bytes: Uint8Array, key: KeyObject, keyId: string): string {
  return `${keyId}:${sign(null, bytes, key).toString('base64')}`;
}

export type SigCheck = { ok: true; keyId: string } | { ok: false; reason: string };

export function verifyManifestSig(bytes: Uint8Array, sigText: string, lookup: KeyLookup): SigCheck {
  const m = /^([A-Za-z0-9][A-Za-z0-9._-]{0,63}):([A-Za-z0-9+/]{86}==)\s*$/.exec(sigText);
  if (!m) return { ok: false, reason: 'manifest signature must be KEYID:BASE64 (an Ed25519 signature)' };
  const keyId = m[1]!;
  const key = lookup(keyId);
  if (typeof key === 'string') return { ok: false, reason: `manifest signature: ${key}` };
  let good = false;
  try {
    good = verify(null, bytes, key, Buffer.from(m[2]!, 'base64'));
  } catch {
    good = false;
  }
  return good ? { ok: true, keyId } : { ok: false, reason: `manifest signature: bad signature for keyId "${keyId}"` };
}

/** Parses manifest bytes; throws an Error saying what is wrong. */
export function parseManifest(bytes: Uint8Array): ReleaseManifest {
  let m: unknown;
  try {
    m = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new Error('manifest.json is not JSON');
  }
  const o = m as Partial<ReleaseManifest>;
  if (typeof o !== 'object' || o === null || o.format !== MANIFEST_FORMAT) throw new Error(`manifest.json: format must be ${MANIFEST_FORMAT}`);
  if (typeof o.version !== 'string' || releaseVersionProblem(o.version)) throw new Error('manifest.json: bad version');
  if (typeof o.files !== 'object' || o.files === null) throw new Error('manifest.json: no files');
  return o as ReleaseManifest;
}

/**
 * What differs between a tree and its manifest: a missing, extra or changed file, a changed link
 * or mode, a link leaving the tree. Empty: the tree is exactly the release that was signed.
 */
export async function treeProblems(root: string, m: ReleaseManifest): Promise<string[]> {
  const problems: string[] = [];
  const have = await entriesOf(root);
  for (const [rel, want] of Object.entries(m.files)) {
    const got = have[rel];
    if (!got) problems.push(`${rel}: missing`);
    else if ('link' in want) {
      if (!('link' in got) || got.link !== want.link) problems.push(`${rel}: link differs`);
      const lp = linkProblem(rel, want.link);
      if (lp) problems.push(lp);
    } else if ('link' in got || got.sha256 !== want.sha256 || got.size !== want.size) problems.push(`${rel}: content differs from the manifest`);
    else if (got.mode !== want.mode) problems.push(`${rel}: mode differs`);
  }
  for (const rel of Object.keys(have)) if (!Object.hasOwn(m.files, rel)) problems.push(`${rel}: not in the manifest`);
  return problems;
}
