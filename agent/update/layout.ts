import { lstat, mkdir, readdir, readlink, rename, rm, symlink, unlink } from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir } from '../fsx/atomic.js';
import { releaseVersionProblem } from './manifest.js';

// The install layout (issue 13 item 2): releases/{version}/ trees, and two symlinks beside them,
// `current` (what the unit runs, through /opt/signage-agent/current -> releases/current) and
// `previous` (where the health gate goes back to). A link is replaced by making it under a temp
// name and renaming it over the old one: rename(2) is atomic, so a power cut leaves the old link
// or the new one, never none. A release directory appears by rename only after it was verified,
// so whatever a link names is complete.

export type LinkName = 'current' | 'previous';

/** Where a switch stands; a test kills the process at each (test/update-switch.test.ts). */
export type SwitchStep = 'release-in-place' | 'pending-written' | 'previous-linked' | 'current-linked';

export class ReleaseLayout {
  constructor(readonly dir: string) {}

  pathOf(version: string): string {
    return path.join(this.dir, version);
  }

  /** The version a link names, or undefined (missing, or not a plain name). */
  async linked(name: LinkName): Promise<string | undefined> {
    try {
      const t = await readlink(path.join(this.dir, name));
      return releaseVersionProblem(t) ? undefined : t;
    } catch {
      return undefined;
    }
  }

  async has(version: string): Promise<boolean> {
    try {
      return (await lstat(this.pathOf(version))).isDirectory();
    } catch {
      return false;
    }
  }

  /** Points `name` at releases/{version}: a temp link renamed over the old one, then the directory fsynced. */
  async relink(name: LinkName, version: string): Promise<void> {
    const tmp = path.join(this.dir, `.${name}.tmp`);
    await unlink(tmp).catch(() => undefined);
    await symlink(version, tmp);
    await rename(tmp, path.join(this.dir, name));
    await fsyncDir(this.dir);
  }

  /** Moves a verified tree into releases/{version}; one already there is set aside first (it is neither link's: the caller checked). */
  async place(tree: string, version: string): Promise<void> {
    const dest = this.pathOf(version);
    if (await this.has(version)) {
      const aside = path.join(this.dir, `.trash-${version}-${Date.now()}`);
      await rename(dest, aside);
      await rm(aside, { recursive: true, force: true });
    }
    await rename(tree, dest);
    await fsyncDir(this.dir);
  }

  /** A private staging directory inside releases/ (same filesystem: the final move is a rename). */
  async staging(version: string): Promise<string> {
    await mkdir(this.dir, { recursive: true });
    const dir = path.join(this.dir, `.incoming-${version}-${Date.now()}`);
    await mkdir(dir);
    return dir;
  }

  /**
   * Keeps what `current` and `previous` name (two releases) and removes every other release and
   * every leftover staging or trash directory. Returns what it removed.
   */
  async prune(): Promise<string[]> {
    const keep = new Set([await this.linked('current'), await this.linked('previous')].filter((v): v is string => v !== undefined));
    if (keep.size === 0) return [];
    const removed: string[] = [];
    for (const name of await readdir(this.dir)) {
      if (name === 'current' || name === 'previous' || keep.has(name)) continue;
      const p = path.join(this.dir, name);
      const st = await lstat(p).catch(() => undefined);
      if (!st?.isDirectory()) continue;
      await rm(p, { recursive: true, force: true });
      removed.push(name);
    }
    if (removed.length > 0) await fsyncDir(this.dir);
    return removed;
  }
}
