import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Clock } from '../core/clock.js';
import type { KeyLookup } from '../protocol/envelope.js';
import { transfer, TransferError } from '../media/transfer.js';
import { pinnedFetch } from '../media/pinned-fetch.js';
import type { Lookup, SourcePolicy } from '../media/sources.js';
import type { ReleaseLayout } from './layout.js';
import { MANIFEST_FILE, parseManifest, treeProblems, verifyManifestSig } from './manifest.js';

// Fetch, verify and unpack one release. Nothing here touches `current` or `previous`: a release
// that fails any check leaves the box exactly as it was (its staging directory removed).

/** A release may be this big (the agent with its node_modules is ~15 MB compressed). */
const MAX_RELEASE_BYTES = 256 * 1024 * 1024;

export interface UpdateArgs {
  url: string;
  sha256: string;
  version: string;
  manifestSig: string;
}

/** Runs a program to its end; rejects with its stderr on a non-zero exit (tar). */
export type RunProgram = (file: string, args: string[]) => Promise<string>;

export interface InstallerCtx {
  layout: ReleaseLayout;
  /** dataDir/update/cache: the tarball and its `.part` (kept between attempts, so a download resumes). */
  cacheDir: string;
  clock: Clock;
  sources: SourcePolicy;
  /** Default: the policy-checked fetch media uses (pinned-fetch.ts), so a release URL cannot rebind to the box or its LAN. */
  fetchImpl?: typeof fetch;
  /** The resolver behind the checks (tests inject a rebinding one). */
  lookup?: Lookup;
  run: RunProgram;
}

/** A refusal with the stage it happened at, for `update-failed`. */
export class UpdateRefused extends Error {
  constructor(
    readonly stage: 'download' | 'verify' | 'unpack',
    message: string,
  ) {
    super(message);
  }
}

export class ReleaseInstaller {
  constructor(private readonly ctx: InstallerCtx) {}

  /** The tarball in the cache, its sha256 checked as it arrived (media/transfer.ts: resume, sources policy). */
  async download(a: UpdateArgs, signal: AbortSignal): Promise<string> {
    await mkdir(this.ctx.cacheDir, { recursive: true });
    const finalPath = path.join(this.ctx.cacheDir, `${a.sha256}.tar.gz`);
    try {
      await transfer({
        url: a.url,
        sha256: a.sha256,
        partPath: path.join(this.ctx.cacheDir, `${a.sha256}.part`),
        finalPath,
        maxBytes: MAX_RELEASE_BYTES,
        fetchImpl: this.ctx.fetchImpl ?? pinnedFetch(this.ctx.sources, this.ctx.lookup),
        sources: this.ctx.sources,
        ...(this.ctx.lookup ? { lookup: this.ctx.lookup } : {}),
        clock: this.ctx.clock,
        signal,
        idleMs: 60_000,
      });
    } catch (e) {
      throw new UpdateRefused('download', e instanceof TransferError ? e.message : String((e as Error).message ?? e));
    }
    return finalPath;
  }

  /**
   * Unpacks into a staging directory beside the releases, checks the manifest's signature (the
   * command's `manifestSig`), its version and every file against it, then renames it into
   * releases/{version}. Resolves with nothing switched; throws UpdateRefused.
   */
  async unpack(tarball: string, a: UpdateArgs, keys: KeyLookup): Promise<void> {
    const { layout, run } = this.ctx;
    const listing = await run('tar', ['-tzf', tarball]).catch((e: Error) => {
      throw new UpdateRefused('unpack', `not a gzip tar: ${e.message.slice(0, 200)}`);
    });
    for (const name of listing.split('\n')) {
      if (name === '') continue;
      if (name.startsWith('/') || name.split('/').includes('..')) throw new UpdateRefused('unpack', `tar member ${name.slice(0, 100)} leaves the release`);
    }
    const staging = await layout.staging(a.version);
    try {
      await run('tar', ['-xzf', tarball, '-C', staging, '--no-same-owner']).catch((e: Error) => {
        throw new UpdateRefused('unpack', `tar failed: ${e.message.slice(0, 200)}`);
      });
      const bytes = await readFile(path.join(staging, MANIFEST_FILE)).catch(() => {
        throw new UpdateRefused('verify', 'the release has no manifest.json');
      });
      const sig = verifyManifestSig(bytes, a.manifestSig, keys);
      if (!sig.ok) throw new UpdateRefused('verify', sig.reason);
      let m;
      try {
        m = parseManifest(bytes);
      } catch (e) {
        throw new UpdateRefused('verify', (e as Error).message);
      }
      if (m.version !== a.version) throw new UpdateRefused('verify', `the manifest says version ${m.version}, the command ${a.version}`);
      const problems = await treeProblems(staging, m);
      if (problems.length > 0) throw new UpdateRefused('verify', `the release differs from its signed manifest: ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? ` (+${problems.length - 5} more)` : ''}`);
      await layout.place(staging, a.version);
    } catch (e) {
      await rm(staging, { recursive: true, force: true });
      throw e;
    }
  }

  /** The tarball is not needed once its release is in place (it stays on a failure: the next attempt resumes or reuses it). */
  async dropCached(a: UpdateArgs): Promise<void> {
    await rm(path.join(this.ctx.cacheDir, `${a.sha256}.tar.gz`), { force: true });
  }
}
