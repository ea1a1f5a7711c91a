import path from 'node:path';
import type { TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import type { Events } from '../events/recorder.js';
import type { KeyLookup } from '../protocol/envelope.js';
import { GateFiles } from './gate-files.js';
import { ReleaseInstaller, UpdateRefused, type InstallerCtx, type UpdateArgs } from './installer.js';
import { ReleaseLayout, type SwitchStep } from './layout.js';
import { releaseVersionProblem } from './manifest.js';

// The `update` command and the new release's proof (issue 13 items 2-3). The command answers at
// once (accepted) and the work goes on here: download, verify, unpack, wait for a gap between
// spots, switch, restart. Whatever fails before the switch is an `update-failed` event and
// nothing changes. After the switch the new release must prove itself; the health gate
// (provisioning/update-gate.sh, outside every release) rolls back when it does not, and the old
// release reports `update-failed` when it is back.

export interface UpdateSettings {
  deadlineSec: number;
  healthyAfterSec: number;
  maxStarts: number;
  minGapSec: number;
}

/** Where the player stands between spots, from the engine. */
export interface SpotGap {
  spotUnderWay: boolean;
  /** ms until the next planned spot; undefined: none planned. */
  nextSpotInMs?: number;
}

export interface UpdaterCtx extends Omit<InstallerCtx, 'layout' | 'cacheDir'> {
  releasesDir: string;
  /** dataDir/update: the gate's files and the download cache. */
  stateDir: string;
  version: string;
  log: Logger;
  events: Events;
  settings: UpdateSettings;
  /** Who may sign a release for this screen (kind `update`); undefined: no keys configured. */
  keys(): KeyLookup | undefined;
  gap(): SpotGap;
  /** Connected to the broker and the player playing or idle by plan. */
  healthy(): boolean;
  /** Ends the process so systemd starts it again from `current` (main.ts; tests record it). */
  requestRestart(reason: string): void;
  /** Tests stop here to kill the process at each step of the switch. */
  onStep?(step: SwitchStep): Promise<void> | void;
}

export type UpdateState = 'idle' | 'downloading' | 'verifying' | 'waiting-for-gap' | 'switching' | 'proving' | 'healthy';

const POLL_MS = 1000;

export class Updater {
  private readonly layout: ReleaseLayout;
  private readonly files: GateFiles;
  private readonly installer: ReleaseInstaller;
  private state: UpdateState = 'idle';
  private target: string | undefined;
  private timer: TimerHandle | undefined;
  private healthySince: number | undefined;
  private abort = new AbortController();
  private job: Promise<void> | undefined;
  private stopped = false;
  private wakeUp: (() => void) | undefined;

  constructor(private readonly ctx: UpdaterCtx) {
    this.layout = new ReleaseLayout(ctx.releasesDir);
    this.files = new GateFiles(ctx.stateDir);
    this.installer = new ReleaseInstaller({ ...ctx, layout: this.layout, cacheDir: path.join(ctx.stateDir, 'cache') });
  }

  /** What the heartbeat and `status` carry. */
  info(): { agentVersion: string; update: { state: UpdateState; target?: string } } {
    return { agentVersion: this.ctx.version, update: { state: this.state, ...(this.target ? { target: this.target } : {}) } };
  }

  async start(): Promise<void> {
    this.stopped = false;
    const rb = await this.files.rolledBack();
    if (rb) {
      this.ctx.log.warn(rb, 'the health gate rolled an update back');
      await this.ctx.events.record('update-failed', { version: rb.from, runningVersion: this.ctx.version, stage: 'health', reason: rb.reason, rolledBackAt: new Date(rb.at * 1000).toISOString() });
      await this.files.remove('rolled-back');
    }
    const pending = await this.files.pending();
    if (pending && pending.to === this.ctx.version) {
      this.state = 'proving';
      this.target = pending.to;
      this.watchHealth(pending.from);
    } else if (!pending) {
      await this.prune();
    }
  }

  /**
   * Not waiting for a job: a download is aborted, a wait for a gap ends, an unpack (tar) may run
   * on until the process exits; its staging directory is pruned at the next start.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.wakeUp?.();
    this.abort.abort();
  }

  /** The `update` command: checks the arguments, then works on in the background. */
  accept(raw: Record<string, unknown>): { accepted: true; version: string; from: string } {
    const a = argsOf(raw);
    const keys = this.ctx.keys();
    if (!keys) throw new Error('updates need security keys (security.assignmentKeys or a key set): a release is code, it must be signed');
    if (a.version === this.ctx.version) throw new Error(`already running ${a.version}`);
    if (this.job) throw new Error(`an update to ${this.target ?? '?'} is under way (${this.state})`);
    if (this.state === 'proving') throw new Error(`this release (${this.ctx.version}) is still proving itself; try again later`);
    this.target = a.version;
    this.abort = new AbortController();
    this.job = this.run(a, keys).finally(() => {
      this.job = undefined;
    });
    return { accepted: true, version: a.version, from: this.ctx.version };
  }

  private async run(a: UpdateArgs, keys: KeyLookup): Promise<void> {
    const log = this.ctx.log.child({ update: a.version });
    try {
      const current = await this.layout.linked('current');
      if (current === undefined) throw new UpdateRefused('unpack', `${this.ctx.releasesDir}/current is not a release link: this agent was not installed in the release layout`);
      this.state = 'downloading';
      const tarball = await this.installer.download(a, this.abort.signal);
      this.state = 'verifying';
      if (current === a.version) throw new UpdateRefused('verify', `${a.version} is already current`);
      await this.installer.unpack(tarball, a, keys);
      await this.installer.dropCached(a);
      await this.ctx.onStep?.('release-in-place');
      this.state = 'waiting-for-gap';
      await this.waitForGap();
      if (this.stopped) return;
      this.state = 'switching';
      await this.switchTo(current, a.version);
      log.info({ from: current }, 'switched; restarting into the new release');
      this.ctx.requestRestart(`update to ${a.version}`);
    } catch (e) {
      this.state = 'idle';
      this.target = undefined;
      if (this.stopped) return;
      const stage = e instanceof UpdateRefused ? e.stage : 'switch';
      const reason = String((e as Error).message ?? e).slice(0, 500);
      log.warn({ stage, reason }, 'update refused; nothing switched');
      await this.ctx.events.record('update-failed', { version: a.version, runningVersion: this.ctx.version, stage, reason });
    }
  }

  /** Never cuts a spot: waits until none is in the player and the next one is far enough off for a restart. */
  private async waitForGap(): Promise<void> {
    const need = this.ctx.settings.minGapSec * 1000;
    for (;;) {
      if (this.stopped) return;
      const g = this.ctx.gap();
      if (!g.spotUnderWay && (g.nextSpotInMs === undefined || g.nextSpotInMs >= need)) return;
      await new Promise<void>((resolve) => {
        this.wakeUp = resolve;
        this.timer = this.ctx.clock.setTimer(POLL_MS, resolve);
      });
      this.wakeUp = undefined;
    }
  }

  /**
   * The order is what makes a power cut harmless: the gate's pending file before any link moves,
   * `previous` before `current`, each link replaced by a rename. At every instant `current` names
   * a complete release (A, then B), and the gate knows what to go back to.
   */
  private async switchTo(from: string, to: string): Promise<void> {
    const s = this.ctx.settings;
    await this.files.remove('healthy', 'starts');
    await this.files.writePending({ to, from, deadline: Math.floor(this.ctx.clock.now() / 1000) + s.deadlineSec, maxStarts: s.maxStarts });
    await this.ctx.onStep?.('pending-written');
    await this.layout.relink('previous', from);
    await this.ctx.onStep?.('previous-linked');
    await this.layout.relink('current', to);
    await this.ctx.onStep?.('current-linked');
  }

  /** The new release proves itself: healthy without a break for healthyAfterSec, then `healthy` is written and old releases pruned. */
  private watchHealth(from: string): void {
    const need = this.ctx.settings.healthyAfterSec * 1000;
    const tick = (): void => {
      if (this.stopped) return;
      const now = this.ctx.clock.monotonic();
      if (!this.ctx.healthy()) this.healthySince = undefined;
      else {
        this.healthySince ??= now;
        if (now - this.healthySince >= need) {
          void this.proved(from);
          return;
        }
      }
      this.timer = this.ctx.clock.setTimer(POLL_MS, tick);
    };
    tick();
  }

  private async proved(from: string): Promise<void> {
    try {
      await this.files.markHealthy(this.ctx.version);
      this.state = 'healthy';
      this.ctx.log.info({ from, to: this.ctx.version }, 'the new release proved itself healthy');
      await this.ctx.events.record('updated', { from, to: this.ctx.version });
      await this.prune();
    } catch (e) {
      this.ctx.log.error({ err: e }, 'could not record the release as healthy; the gate will roll back at the deadline');
    }
  }

  private async prune(): Promise<void> {
    try {
      const removed = await this.layout.prune();
      if (removed.length > 0) this.ctx.log.info({ removed }, 'old releases pruned (two kept)');
    } catch (e) {
      this.ctx.log.debug({ err: e }, 'no releases to prune');
    }
  }
}

function argsOf(a: Record<string, unknown>): UpdateArgs {
  const { url, sha256, version, manifestSig } = a;
  if (typeof url !== 'string' || !/^(https?|file):\/\//.test(url) || url.length > 2048) throw new Error('args.url: must be an http(s):// or file:// URL');
  if (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)) throw new Error('args.sha256: must be 64 lowercase hex digits');
  if (typeof version !== 'string' || releaseVersionProblem(version)) throw new Error(`args.version: ${releaseVersionProblem(String(version)) ?? 'must be a string'}`);
  if (typeof manifestSig !== 'string' || manifestSig.length > 200) throw new Error('args.manifestSig: must be KEYID:BASE64');
  return { url, sha256, version, manifestSig };
}
