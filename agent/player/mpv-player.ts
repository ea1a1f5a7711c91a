// size: MpvPlayer is one mpv process's whole life (spawn, supervision, spots, screenshots, the §11 picture); its parts live beside it.
import { mkdirSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import type { Outcome } from '../core/types.js';
import { buildMpvArgs } from './mpv-args.js';
import { MpvCommandError, MpvIpc, type EndFileEvent } from './mpv-ipc.js';
import { MpvSupervisor, type SupervisorTimings } from './mpv-supervisor.js';
import { SpotRun, type SpotRunContext } from './mpv-spot.js';
import { MpvPlaylist, type PlaybackTrace } from './playlist.js';
import { MpvPlayhead } from './playhead.js';
import { warmPageCache } from './page-cache.js';
import { applyPicture, FULL_PICTURE, type Picture } from './picture.js';
import type { Clip } from '../core/clip.js';
import type { Player, PlayerEvents, PlayerState, SpotHandlers, SpotRequest } from './player.js';

export type { PlaybackTrace } from './playlist.js';

/** Defaults: load 5000, stall 2000, ping every 2000 answered within 1500, backoff 500 → 30000, reset after 60000 up. */
export interface MpvTimings extends SupervisorTimings {
  /** A spot with no `playback-restart` this long after loadfile is `failed`. */
  loadTimeoutMs: number;
}

export interface MpvPlayerContext {
  /** `config.player.mpvPath`. */
  mpvPath: string;
  /** `config.player.args`, appended after the agent's own (so they win). */
  args: string[];
  log: Logger;
  clock: Clock;
  /** Where screenshots are written for a moment (created if missing). */
  screenshotDir: string;
  /** Root of sysfs, to find the HDMI connector for DRM output. Default `/sys`. */
  sysfsRoot?: string;
  /** A desktop session runs (X11/Wayland): window output instead of DRM when `args` name no `--vo`. */
  desktop?: boolean;
  events?: PlayerEvents;
  /** Frame sampling during spots (`output-suspect`); `false` disables it. Default every 5000 ms. */
  evidence?: { intervalMs: number } | false;
  timings?: Partial<MpvTimings>;
  /** Sees every file mpv starts, shows and ends (tests and the bench measure the loop with it). */
  trace?: (e: PlaybackTrace) => void;
}

const DEFAULT_TIMINGS: MpvTimings = {
  loadTimeoutMs: 5000,
  stallMs: 2000,
  pingIntervalMs: 2000,
  pingTimeoutMs: 1500,
  backoffMinMs: 500,
  backoffMaxMs: 30_000,
  healthyResetMs: 60_000,
};

/**
 * The real screen: one long-lived mpv fed over JSON IPC, its loop and spots queued in mpv's
 * playlist by MpvPlaylist. A supervisor restarts mpv when it dies, stalls or stops answering,
 * with capped exponential backoff.
 */
export class MpvPlayer implements Player {
  private readonly t: MpvTimings;
  private ipc: MpvIpc | undefined;
  private ready = false;
  private stopped = false;
  private spot: SpotRun | undefined;
  private readonly playlist: MpvPlaylist<SpotRun>;
  private readonly spots: SpotRunContext;
  private readonly playhead: MpvPlayhead;
  private shots = 0;
  private readonly logged = new Set<string>();
  private dying: Promise<void> = Promise.resolve();
  private readonly supervisor: MpvSupervisor;
  private picture: Picture = FULL_PICTURE;

  constructor(private readonly ctx: MpvPlayerContext) {
    this.t = { ...DEFAULT_TIMINGS, ...ctx.timings };
    this.playhead = new MpvPlayhead(ctx.clock);
    this.playlist = new MpvPlaylist({
      clock: ctx.clock,
      log: ctx.log,
      mpv: () => this.ipc,
      ready: () => this.ready,
      spotActive: () => this.spot !== undefined,
      trace: ctx.trace,
    });
    this.spots = {
      clock: ctx.clock,
      log: ctx.log,
      loadTimeoutMs: this.t.loadTimeoutMs,
      evidence: ctx.evidence ?? { intervalMs: 5000 },
      capture: () => this.screenshot(),
      timePos: () => this.playhead.timePos,
      onSuspect: (d) => {
        this.ctx.log.warn(d, 'output suspect');
        this.ctx.events?.onOutputSuspect?.({ ...d });
      },
      onLoadTimeout: () => this.playlist.skip(),
      onOver: (run) => {
        if (this.spot === run) this.spot = undefined;
      },
    };
    this.supervisor = new MpvSupervisor({
      clock: ctx.clock,
      log: ctx.log,
      timings: this.t,
      mpv: {
        live: () => (this.ready ? this.ipc : undefined),
        playheadMovedAt: () => (this.playlist.playing()?.restarted ? this.playhead.lastMoveUnpaused() : undefined),
        takeDown: (reason) => this.takeDown(reason),
        bringUp: () => this.spawn(),
        onRestarted: (reason) => this.ctx.events?.onRestarted?.(reason),
      },
    });
  }

  /**
   * Never fails because of mpv: a box whose mpv cannot start (a missing display, a bad
   * `player.args`) keeps its agent up, reports `player.state: down` in every heartbeat and
   * retries with the supervisor's backoff, so the NOC sees why the screen is dark.
   */
  async start(): Promise<void> {
    mkdirSync(this.ctx.screenshotDir, { recursive: true });
    this.stopped = false;
    this.supervisor.start();
    try {
      await this.spawn();
    } catch (e) {
      this.ctx.log.error({ err: e }, 'mpv did not start; the screen stays dark, retrying with backoff');
      this.supervisor.fail(`start failed: ${(e as Error).message}`);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.supervisor.stop();
    this.playlist.stop();
    this.spot?.finish('interrupted', 'player stopped');
    this.ready = false;
    const ipc = this.ipc;
    this.ipc = undefined;
    await ipc?.stop();
    await this.dying;
  }

  setLoop(clips: Clip[]): void {
    this.playlist.setLoop(clips);
  }

  /**
   * Throws only while mpv is down or a spot plays. Otherwise resolves on mpv's answer to the
   * loadfile (or the command timing out), and the spot ends through `onEnded` whatever happens:
   * a refused load `failed` here, no first frame within `loadTimeoutMs` `failed`, mpv dying
   * `interrupted` (takeDown), a file that ends badly as end-file tells.
   */
  async playSpot(req: SpotRequest, handlers: SpotHandlers): Promise<void> {
    if (!this.ready || !this.ipc) throw new Error('player is down');
    if (this.spot) throw new Error(`a spot is playing (${this.spot.req.playId})`);
    const spot = new SpotRun(req, handlers, this.spots);
    this.spot = spot;
    const loaded = this.playlist.loadSpot(req.clip, spot);
    spot.armLoadTimer();
    try {
      await loaded;
    } catch (e) {
      // mpv refused the command: the spot never started. (mpv dying is the supervisor's case.)
      if (e instanceof MpvCommandError) spot.finish('failed', e.message);
    }
  }

  /** §11 standby and brightness; kept and applied again to every mpv the supervisor starts. */
  async setPicture(p: Picture): Promise<void> {
    this.picture = { ...p };
    const ipc = this.ipc;
    if (!this.ready || !ipc) return;
    await applyPicture(ipc, this.picture, this.ctx.log);
    // Frames filtered before the change are still queued: resolve once two more went by (at most
    // a second), so "set" means on screen and the display event that follows is true.
    if (p.blank || !this.playlist.playing()) return;
    const from = this.playhead.steps;
    const until = this.ctx.clock.monotonic() + 1000;
    while (this.playhead.steps < from + 2 && this.ctx.clock.monotonic() < until && this.ipc === ipc) {
      await new Promise<void>((r) => this.ctx.clock.setTimer(20, r));
    }
  }

  /** §10: the spot on screen ends now as interrupted (an alert takes the screen). */
  interrupt(reason: string): void {
    if (this.spot) this.playlist.skip();
    this.spot?.finish('interrupted', reason);
  }

  /** Warms the page cache with the head of the file, so the spot's open and first reads don't wait on the disk. */
  async preload(clip: Clip): Promise<void> {
    await warmPageCache(clip.path);
  }

  busy(): boolean {
    return this.spot !== undefined;
  }

  state(): PlayerState {
    if (!this.ready) return { state: 'down' };
    const hwdec = this.playhead.hwdec;
    const hw = hwdec !== undefined ? { hwdec } : {};
    if (this.spot) return { state: 'playing', campaignId: this.spot.req.campaignId, url: this.spot.req.clip.path, ...hw };
    const e = this.playlist.playing()?.entry;
    if (e) return { state: 'playing', url: e.clip.path, ...hw };
    return { state: 'idle' };
  }

  /**
   * The frame being shown, as PNG. Rejects when nothing plays: the screen is then black, and a
   * made-up black image would be no evidence of anything.
   */
  async screenshot(): Promise<Buffer> {
    const ipc = this.ipc;
    if (!this.ready || !ipc) throw new Error('player is down: no frame to capture');
    if (!this.playlist.playing()) throw new Error('nothing is playing (the screen is black): no frame to capture');
    const file = path.join(this.ctx.screenshotDir, `frame-${process.pid}-${++this.shots}.png`);
    try {
      await ipc.command(['screenshot-to-file', file, 'video'], { timeoutMs: 5000 });
      return await readFile(file);
    } finally {
      await rm(file, { force: true });
    }
  }

  async restart(reason: string): Promise<void> {
    if (this.stopped) throw new Error('player is stopped');
    await this.supervisor.restartNow(reason);
  }

  // --- mpv process and supervision ---

  private async spawn(): Promise<void> {
    const ipc = new MpvIpc({
      mpvPath: this.ctx.mpvPath,
      args: buildMpvArgs(this.ctx.args, { desktop: this.ctx.desktop ?? false, sysfsRoot: this.ctx.sysfsRoot }),
      log: this.ctx.log,
      clock: this.ctx.clock,
    });
    this.ipc = ipc;
    this.playlist.reset();
    this.playhead.reset();
    ipc.on('start-file', (e) => ipc === this.ipc && this.onStartFile(e.playlistEntryId));
    ipc.on('playback-restart', () => ipc === this.ipc && this.onPlaybackRestart());
    ipc.on('end-file', (e) => ipc === this.ipc && this.onEndFile(e));
    ipc.on('property-change', (n, d) => {
      if (ipc !== this.ipc) return;
      if (n === 'idle-active') this.playlist.onIdleActive(d === true);
      else this.playhead.onProperty(n, d);
    });
    ipc.on('log', (line) => this.logMpv(line));
    ipc.on('exit', (x) => {
      if (ipc === this.ipc && this.ready) this.supervisor.fail(`mpv exited (code ${x.code}, signal ${x.signal})`);
    });
    try {
      await ipc.start();
      await Promise.all(['time-pos', 'hwdec-current', 'idle-active', 'pause', 'paused-for-cache'].map((p) => ipc.observe(p)));
      // Before the loop resumes, so a restart inside a standby period never shows a frame.
      if (this.picture !== FULL_PICTURE) await applyPicture(ipc, this.picture, this.ctx.log);
    } catch (e) {
      if (ipc === this.ipc) this.ipc = undefined;
      ipc.kill();
      throw e;
    }
    if (this.stopped || ipc !== this.ipc) return void ipc.kill();
    this.ready = true;
    this.supervisor.markUp();
    this.playhead.moved();
    this.ctx.log.info({ pid: ipc.pid }, 'mpv started');
    this.playlist.resume();
  }

  /** Kills mpv and ends the spot it was playing; resolves once the process is gone. */
  private takeDown(reason: string): Promise<void> {
    const ipc = this.ipc;
    this.ipc = undefined;
    this.ready = false;
    if (ipc && !ipc.exited) {
      this.dying = new Promise<void>((r) => {
        const t = this.ctx.clock.setTimer(2000, r);
        ipc.on('exit', () => (t.cancel(), r()));
      });
      ipc.kill();
    }
    this.spot?.finish('interrupted', reason);
    return this.dying;
  }

  // --- mpv's events ---

  private onStartFile(id: number | undefined): void {
    this.playlist.onStartFile(id);
    this.playhead.moved();
  }

  private onPlaybackRestart(): void {
    this.playhead.moved();
    const first = this.playlist.onPlaybackRestart();
    if (!first) return; // a seek, not a start
    const e = first.entry;
    if (e?.kind === 'spot' && e.spot === this.spot) e.spot.onFirstFrame();
  }

  private onEndFile(e: EndFileEvent): void {
    const entry = this.playlist.onEndFile(e);
    if (entry?.kind !== 'spot') return;
    const outcome: Outcome = e.reason === 'eof' ? 'completed' : e.reason === 'error' ? 'failed' : 'interrupted';
    entry.spot.finish(outcome, e.fileError ?? (outcome === 'completed' ? undefined : `end-file ${e.reason}`));
  }

  /** mpv repeats some warnings on every file (a missing hwdec driver): say each once, then only at debug. */
  private logMpv(line: string): void {
    if (this.logged.has(line)) return this.ctx.log.debug({ mpv: line }, 'mpv');
    if (this.logged.size < 500) this.logged.add(line);
    this.ctx.log.warn({ mpv: line }, 'mpv');
  }
}
