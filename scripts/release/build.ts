import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { MANIFEST_FILE, manifestBytes, manifestOf, releaseVersionProblem, SIGNATURE_FILE, signManifest } from '../../agent/update/manifest.js';
import { readSigner } from '../signagectl/sign.js';

export const RELEASE_HELP = `Usage: npm run release -- --key op.key [--key-id ID] [--version V] [--out DIR] [--no-build]

Builds the agent (tsc) and packs one self-contained release: dist/agent, the operator tools the Pi
runs (dist/scripts without the benchmarks), package.json, the systemd units, install.sh and
update-gate.sh, and the production node_modules (the dependency closure of npm ls --omit=dev,
copied from this checkout). manifest.json names every file with its sha256; manifest.sig is its
Ed25519 signature with --key (a key from signagectl keygen). Writes DIR/signage-agent-V.tar.gz
(default DIR: release/) and prints {"file","sha256","version","manifestSig","bytes"}.

Native parts (sqlite3) are those of this machine: build the Pi's release on an arm64 box, or
in CI under qemu-user (docker run --platform linux/arm64 node:20-bookworm npm ci && npm run release).
The manifest records the arch and Node ABI it was built for.`;

export interface ReleaseOpts {
  repo: string;
  key: string | undefined;
  keyId: string | undefined;
  version: string | undefined;
  out: string;
  build: boolean;
  arch: string;
  nodeAbi: string;
  log(s: string): void;
}

export interface ReleaseResult {
  file: string;
  sha256: string;
  version: string;
  manifestSig: string;
  bytes: number;
}

/** Build output a screen never loads: benchmarks, chaos, source maps. */
function keepDist(src: string): boolean {
  const b = path.basename(src);
  return !b.endsWith('.map') && !/^(bench|chaos)(\.js)?$/.test(b) && b !== 'release' && b !== 'release.js';
}

/** What a package needs at run time: not the native build's objects, not nested node_modules (copied on their own). */
function keepModule(src: string, top: string): boolean {
  const rel = path.relative(top, src);
  if (rel.split(path.sep).includes('node_modules')) return false;
  return !/(^|\/)build\/Release\/(obj|obj\.target|\.deps)(\/|$)/.test(rel) && !/\.(a|o)$/.test(rel) && !/(^|\/)(deps|src)\/.*\.(c|cc|h)$/.test(rel);
}

export async function buildRelease(o: ReleaseOpts): Promise<ReleaseResult> {
  if (!o.key) throw new Error('--key FILE is required (an Ed25519 private key from signagectl keygen)');
  const signer = readSigner(o.key, o.keyId);
  const pkg = JSON.parse(readFileSync(path.join(o.repo, 'package.json'), 'utf8')) as Record<string, unknown> & { version: string };
  const version = o.version ?? pkg.version;
  const vp = releaseVersionProblem(version);
  if (vp) throw new Error(vp);
  if (o.build) {
    o.log('release: tsc');
    execFileSync(process.execPath, [path.join(o.repo, 'node_modules/typescript/bin/tsc'), '-p', path.join(o.repo, 'tsconfig.json')], { stdio: 'inherit' });
  }
  const dist = path.join(o.repo, 'dist');
  if (!existsSync(path.join(dist, 'agent', 'main.js'))) throw new Error('no dist/agent/main.js: build first (or drop --no-build)');
  mkdirSync(o.out, { recursive: true });
  const stage = mkdtempSync(path.join(o.out, '.stage-'));
  try {
    cpSync(path.join(dist, 'agent'), path.join(stage, 'dist/agent'), { recursive: true, filter: keepDist });
    cpSync(path.join(dist, 'scripts'), path.join(stage, 'dist/scripts'), { recursive: true, filter: keepDist });
    writeFileSync(path.join(stage, 'package.json'), JSON.stringify({ ...pkg, version, devDependencies: undefined, scripts: undefined }, null, 2) + '\n');
    for (const f of ['README.md', 'systemd/signage-agent.service', 'systemd/signage-agent-firstboot.service', 'systemd/signage-agent-update-gate.service', 'systemd/signage-agent-update-gate.timer', 'provisioning/install.sh', 'provisioning/update-gate.sh']) {
      cpSync(path.join(o.repo, f), path.join(stage, f));
    }
    copyProductionModules(o.repo, stage);
    const manifest = await manifestOf(stage, { version, arch: o.arch, nodeAbi: o.nodeAbi, now: Date.now() });
    const bytes = manifestBytes(manifest);
    const manifestSig = signManifest(bytes, signer.key, signer.keyId);
    writeFileSync(path.join(stage, MANIFEST_FILE), bytes);
    writeFileSync(path.join(stage, SIGNATURE_FILE), manifestSig + '\n');
    const file = path.join(o.out, `signage-agent-${version}.tar.gz`);
    const tmp = `${file}.tmp`;
    // Same tree, same tarball: sorted names, no owners, fixed times (SOURCE_DATE_EPOCH if set).
    execFileSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', `--mtime=@${Number(process.env.SOURCE_DATE_EPOCH ?? 0)}`, '--use-compress-program=gzip -n', '-cf', tmp, '-C', stage, '.']);
    renameSync(tmp, file);
    const data = readFileSync(file);
    o.log(`release: ${file} (${Object.keys(manifest.files).length} files, ${data.length} bytes, ${o.arch}, node ABI ${o.nodeAbi}) signed by ${signer.keyId}`);
    return { file, sha256: createHash('sha256').update(data).digest('hex'), version, manifestSig, bytes: data.length };
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

/** The production dependency closure, as npm sees it in this checkout (no registry needed). */
function copyProductionModules(repo: string, stage: string): void {
  const out = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: repo, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  const root = realpathSync(repo);
  const modules = path.join(repo, 'node_modules');
  const realModules = realpathSync(modules);
  for (const line of out.split('\n')) {
    const p = line.trim();
    if (p === '' || p === repo || p === root) continue;
    const real = realpathSync(p);
    const rel = path.relative(realModules, real);
    if (rel.startsWith('..') || path.isAbsolute(rel)) throw new Error(`npm ls: ${p} is outside node_modules`);
    const top = path.join(realModules, rel);
    cpSync(top, path.join(stage, 'node_modules', rel), { recursive: true, filter: (src) => keepModule(src, top) });
  }
}
