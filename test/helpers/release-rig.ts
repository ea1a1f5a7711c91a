import { execFile } from 'node:child_process';
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { keyIdOf, parseKeyRing, rawPublicKeyOf, ringLookup, type KeyLookup } from '../../agent/protocol/envelope.js';
import { manifestBytes, manifestOf, MANIFEST_FILE, SIGNATURE_FILE, signManifest } from '../../agent/update/manifest.js';
import { buildRelease, type ReleaseResult } from '../../scripts/release/build.js';
import { tempDir, type Teardown } from './tmp.js';

const run = promisify(execFile);
export const REPO = path.resolve(import.meta.dirname, '../..');

export interface OpKey {
  key: KeyObject;
  keyId: string;
  /** `ID:BASE64` as security.assignmentKeys takes it. */
  entry: string;
  file: string;
  lookup: KeyLookup;
}

/** An operator key as `signagectl keygen` writes it (PKCS#8 PEM). */
export function opKey(t: Teardown, id?: string): OpKey {
  const { privateKey } = generateKeyPairSync('ed25519');
  const raw = rawPublicKeyOf(privateKey);
  const keyId = id ?? keyIdOf(raw);
  const dir = tempDir(t, 'opkey-');
  const file = path.join(dir, `${keyId}.key`);
  writeFileSync(file, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  const entry = `${keyId}:${raw.toString('base64')}`;
  return { key: privateKey, keyId, entry, file, lookup: ringLookup(parseKeyRing([entry])!) };
}

/** `npm run release` of this checkout's dist/ (built by the test run), with its own version. */
export async function realRelease(t: Teardown, key: OpKey, version: string): Promise<ReleaseResult> {
  return buildRelease({ repo: REPO, key: key.file, keyId: key.keyId, version, out: tempDir(t, 'release-'), build: false, arch: process.arch, nodeAbi: process.versions.modules, log: () => undefined });
}

export function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/**
 * Another release made from one: unpacked, changed by `edit`, given `version`, manifest made
 * again and signed with `key` (the same functions as the release script), packed again.
 */
export async function deriveRelease(t: Teardown, from: string, key: OpKey, version: string, edit: (tree: string) => void = () => undefined): Promise<ReleaseResult> {
  const dir = tempDir(t, 'derived-');
  const tree = path.join(dir, 'tree');
  mkdirSync(tree);
  await run('tar', ['-xzf', from, '-C', tree]);
  const pkgFile = path.join(tree, 'package.json');
  writeFileSync(pkgFile, JSON.stringify({ ...JSON.parse(readFileSync(pkgFile, 'utf8')), version }, null, 2) + '\n');
  edit(tree);
  return packTree(t, tree, key, version);
}

/** Repacks a release with one file changed and its signed manifest kept: what a tampered mirror serves. */
export async function tamper(t: Teardown, from: string, rel: string, append: string): Promise<string> {
  const dir = tempDir(t, 'tampered-');
  const tree = path.join(dir, 'tree');
  mkdirSync(tree);
  await run('tar', ['-xzf', from, '-C', tree]);
  writeFileSync(path.join(tree, rel), readFileSync(path.join(tree, rel), 'utf8') + append);
  const file = path.join(dir, 'tampered.tar.gz');
  await run('tar', ['-czf', file, '-C', tree, '.']);
  return file;
}

/** Packs a tree as a release of `version`: manifest made and signed with `key`, tarred. */
export async function packTree(t: Teardown, tree: string, key: OpKey, version: string): Promise<ReleaseResult> {
  const m = await manifestOf(tree, { version, arch: process.arch, nodeAbi: process.versions.modules, now: Date.now() });
  const bytes = manifestBytes(m);
  const manifestSig = signManifest(bytes, key.key, key.keyId);
  writeFileSync(path.join(tree, MANIFEST_FILE), bytes);
  writeFileSync(path.join(tree, SIGNATURE_FILE), manifestSig + '\n');
  const file = path.join(tempDir(t, 'packed-'), `signage-agent-${version}.tar.gz`);
  await run('tar', ['-czf', file, '-C', tree, '.']);
  return { file, sha256: sha256(file), version, manifestSig, bytes: readFileSync(file).length };
}

/** A release of a few bytes whose main.js prints its version (the switch and gate tests need no real agent). */
export async function tinyRelease(t: Teardown, key: OpKey, version: string): Promise<ReleaseResult> {
  const tree = path.join(tempDir(t, 'tiny-'), 'tree');
  mkdirSync(path.join(tree, 'dist', 'agent'), { recursive: true });
  writeFileSync(path.join(tree, 'package.json'), JSON.stringify({ name: 'signage-agent', version, type: 'module' }) + '\n');
  writeFileSync(path.join(tree, 'dist', 'agent', 'main.js'), `console.log(${JSON.stringify(version)});\n`);
  return packTree(t, tree, key, version);
}
