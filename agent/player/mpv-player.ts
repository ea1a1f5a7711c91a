import { mkdirSync } from 'node:fs';
import { open, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import type { Outcome } from '../core/types.js';
import { SpotEvidence } from './evidence.js';
import { buildMpvArgs } from './mpv-args.js';
import { MpvCommandError, MpvIpc, type EndFileEvent } from './mpv-ipc.js';
import { MpvSupervisor, type SupervisorTimings } from './mpv-supervisor.js';
import type { Clip } from '../core/clip.js';
import type { Player, PlayerEvents, PlayerState, SpotHandlers, SpotRequest } from './player.js';

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

export interface PlaybackTrace {
  /** start-file, first playback-restart (first frame), end-file. */
  event: 'start' | 'playing' | 'end';
  kind: 'loop' | 'spot' | 'unknown';
  path?: string;
  /** end-file reason. */
  reason?: string;
  /** clock.monotonic() when the player saw it. */
  mono: number;
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

interface ActiveSpot {
  req: SpotRequest;
  handlers: SpotHandlers;
  started: boolean;
  ended: boolean;
  loadTimer?: TimerHandle;
  evidence?: SpotEvidence;
}

type Entry = { kind: 'loop'; clip: Clip; index: number } | { kind: 'spot'; spot: ActiveSpot };

/**
 * The real screen: one long-lived mpv fed over JSON IPC. Loop clips are queued one ahead in
 * mpv's playlist (gapless, mpv never stopped); a spot replaces the playing loop clip at once with
 * the next loop clip queued behind it. A supervisor restarts mpv when it dies, stalls or stops
 * answering, with capped exponential backoff.
 */
export class MpvPlayer implements Player {
  private readonly t: MpvTimings;
  private ipc: MpvIpc | undefined;
  private ready = false;
  private stopped = false;
  private loop: Clip[] = [];
  private loopIndex = 0;
  private loopFailures = 0;
  private loopRetry: TimerHandle | undefined;
  /**
   * A `loadfile … replace` of the loop is on its way. mpv's idle-active notifications lag (the
   * first one comes after `observe_property` answered), so an idle report may predate that load;
   * reloading on it would cut the clip that is starting.
   */
  private loopLoading = false;
  private readonly entries = new Map<number, Entry>();
  private current: { id: number | undefined; entry: Entry | undefined; restarted: boolean } | undefined;
  private spot: ActiveSpot | undefined;
  private idle = true;
  private paused = { pause: false, cache: false };
  private hwdec: string | undefined;
  private timePos: number | undefined;
  private posChangedAt = 0;
  private shots = 0;
  private readonly logged = new Set<string>();
  private dying: Promise<void> = Promise.resolve();
  private readonly supervisor: MpvSupervisor;

  constructor(private readonly ctx: MpvPlayerContext) {
    this.t = { ...DEFAULT_TIMINGS, ...ctx.timings };
    this.supervisor = new MpvSupervisor({
      clock: ctx.clock,
      log: ctx.log,
      timings: this.t,
      mpv: {
        live: () => (this.ready ? this.ipc : undefined),
        playheadMovedAt: () => {
          const playing = this.current?.restarted && !this.idle && !this.paused.pause && !this.paused.cache;
          return playing ? this.posChangedAt : undefined;
        },
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
    this.loopRetry?.cancel();
    if (this.spot) this.finishSpot(this.spot, 'interrupted', 'player stopped');
    this.ready = false;
    const ipc = this.ipc;
    this.ipc = undefined;
    await ipc?.stop();
    await this.dying;
  }

  setLoop(clips: Clip[]): void {
    this.loop = [...clips];
    this.loopIndex = 0;
    this.loopFailures = 0;
    this.loopRetry?.cancel();
    if (!this.ready) return; // spawn() starts the loop
    if (this.spot || (this.current && !this.idle)) {
      // Whatever plays finishes (a spot is never cut, a loop clip plays out); the new loop follows.
      this.send(['playlist-clear']);
      if (this.loop.length) this.queueLoop(0, 'append');
    } else {
      this.resumeLoop();
    }
  }

  async playSpot(req: SpotRequest, handlers: SpotHandlers): Promise<void> {
    if (!this.ready || !this.ipc) throw new Error('player is down');
    if (this.spot) throw new Error(`a spot is playing (${this.spot.req.playId})`);
    const spot: ActiveSpot = { req, handlers, started: false, ended: false };
    this.spot = spot;
    this.loopRetry?.cancel();
    const loaded = this.load({ kind: 'spot', spot }, 'replace');
    // Queued behind the spot: the loop follows it without a gap, and follows at once if it fails.
    if (this.loop.length) this.queueLoop(this.loopIndex, 'append');
    spot.loadTimer = this.ctx.clock.setTimer(this.t.loadTimeoutMs, () => {
      if (spot.started || spot.ended) return;
      this.finishSpot(spot, 'failed', `no playback ${this.t.loadTimeoutMs} ms after loadfile`);
      this.send(['playlist-next', 'force']);
    });
    try {
      await loaded;
    } catch (e) {
      // mpv refused the command: the spot never started. (mpv dying is the supervisor's case.)
      if (e instanceof MpvCommandError) this.finishSpot(spot, 'failed', e.message);
    }
  }

  /** Warms the page cache with the head of the file, so the spot's open and first reads don't wait on the disk. */
  async preload(clip: Clip): Promise<void> {
    if (!path.isAbsolute(clip.path)) return;
    const fh = await open(clip.path, 'r').catch(() => undefined);
    if (!fh) return;
    try {
      const buf = Buffer.alloc(1 << 20);
      for (let pos = 0, i = 0; i < 8; i++, pos += buf.length) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
        if (bytesRead < buf.length) break;
      }
    } finally {
      await fh.close();
    }
  }

  busy(): boolean {
    return this.spot !== undefined;
  }

  state(): PlayerState {
    if (!this.ready) return { state: 'down' };
    const hw = this.hwdec !== undefined ? { hwdec: this.hwdec } : {};
    if (this.spot) return { state: 'playing', campaignId: this.spot.req.campaignId, url: this.spot.req.clip.path, ...hw };
    const e = this.current?.entry;
    if (e && !this.idle) return { state: 'playing', url: e.kind === 'loop' ? e.clip.path : e.spot.req.clip.path, ...hw };
    return { state: 'idle' };
  }

  /**
   * The frame being shown, as PNG. Rejects when nothing plays: the screen is then black, and a
   * made-up black image would be no evidence of anything.
   */
  async screenshot(): Promise<Buffer> {
    const ipc = this.ipc;
    if (!this.ready || !ipc) throw new Error('player is down: no frame to capture');
    if (!this.current || this.idle) throw new Error('nothing is playing (the screen is black): no frame to capture');
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
    this.entries.clear();
    this.current = undefined;
    this.idle = true;
    this.paused = { pause: false, cache: false };
    this.timePos = undefined;
    this.loopLoading = false;
    ipc.on('start-file', (e) => ipc === this.ipc && this.onStartFile(e.playlistEntryId));
    ipc.on('playback-restart', () => ipc === this.ipc && this.onPlaybackRestart());
    ipc.on('end-file', (e) => ipc === this.ipc && this.onEndFile(e));
    ipc.on('property-change', (n, d) => ipc === this.ipc && this.onProperty(n, d));
    ipc.on('log', (line) => this.logMpv(line));
    ipc.on('exit', (x) => {
      if (ipc === this.ipc && this.ready) this.supervisor.fail(`mpv exited (code ${x.code}, signal ${x.signal})`);
    });
    try {
      await ipc.start();
      await Promise.all(['time-pos', 'hwdec-current', 'idle-active', 'pause', 'paused-for-cache'].map((p) => ipc.observe(p)));
    } catch (e) {
      if (ipc === this.ipc) this.ipc = undefined;
      ipc.kill();
      throw e;
    }
    if (this.stopped || ipc !== this.ipc) return void ipc.kill();
    this.ready = true;
    this.supervisor.markUp();
    this.posChangedAt = this.ctx.clock.monotonic();
    this.ctx.log.info({ pid: ipc.pid }, 'mpv started');
    this.resumeLoop();
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
    if (this.spot) this.finishSpot(this.spot, 'interrupted', reason);
    return this.dying;
  }

  // --- playlist ---

  private send(args: unknown[]): void {
    this.ipc?.command(args).catch((e: Error) => this.ctx.log.debug({ err: e.message, args }, 'mpv command failed'));
  }

  private load(entry: Entry, mode: 'replace' | 'append'): Promise<unknown> {
    const ipc = this.ipc;
    if (!ipc) return Promise.reject(new Error('player is down'));
    const file = entry.kind === 'loop' ? entry.clip.path : entry.spot.req.clip.path;
    return ipc.command(['loadfile', file, mode], {
      onReply: (d) => {
        const id = (d as { playlist_entry_id?: unknown } | null)?.playlist_entry_id;
        if (typeof id === 'number') this.entries.set(id, entry);
      },
    });
  }

  private queueLoop(index: number, mode: 'replace' | 'append'): void {
    const n = this.loop.length;
    const clip = this.loop[index % n];
    if (!clip) return;
    this.load({ kind: 'loop', clip, index: index % n }, mode).catch((e: Error) =>
      this.ctx.log.debug({ err: e.message }, 'loop loadfile failed'),
    );
  }

  private resumeLoop(): void {
    if (!this.ready || this.spot || !this.loop.length) return;
    this.loopLoading = true;
    this.queueLoop(this.loopIndex, 'replace');
  }

  private trace(event: PlaybackTrace['event'], entry: Entry | undefined, reason?: string): void {
    const tr = this.ctx.trace;
    if (!tr) return;
    const e: PlaybackTrace = { event, kind: entry?.kind ?? 'unknown', mono: this.ctx.clock.monotonic() };
    if (entry) e.path = entry.kind === 'loop' ? entry.clip.path : entry.spot.req.clip.path;
    if (reason) e.reason = reason;
    this.safely(() => tr(e));
  }

  private onStartFile(id: number | undefined): void {
    const entry = id === undefined ? undefined : this.entries.get(id);
    this.current = { id, entry, restarted: false };
    this.posChangedAt = this.ctx.clock.monotonic();
    this.trace('start', entry);
    if (entry?.kind !== 'loop') return;
    this.loopIndex = entry.index + 1;
    // Keep exactly one loop clip queued behind the playing one; mpv prefetches it.
    if (this.spot || this.loopFailures >= this.loop.length) return;
    this.send(['playlist-clear']);
    this.queueLoop(this.loopIndex, 'append');
  }

  private onPlaybackRestart(): void {
    const cur = this.current;
    this.posChangedAt = this.ctx.clock.monotonic();
    if (!cur || cur.restarted) return; // a seek, not a start
    cur.restarted = true;
    this.loopLoading = false;
    const e = cur.entry;
    this.trace('playing', e);
    if (e?.kind === 'loop') this.loopFailures = 0;
    if (e?.kind !== 'spot' || e.spot !== this.spot || e.spot.started) return;
    const spot = e.spot;
    spot.started = true;
    spot.loadTimer?.cancel();
    this.safely(() => spot.handlers.onStarted(this.ctx.clock.now()));
    const ev = this.ctx.evidence ?? { intervalMs: 5000 };
    if (ev && !spot.ended) {
      spot.evidence = new SpotEvidence(
        {
          clock: this.ctx.clock,
          intervalMs: ev.intervalMs,
          capture: () => this.screenshot(),
          timePos: () => this.timePos,
          onSuspect: (d) => {
            this.ctx.log.warn(d, 'output suspect');
            this.ctx.events?.onOutputSuspect?.({ ...d });
          },
          onError: (err) => this.ctx.log.debug({ err: err.message }, 'evidence sample failed'),
        },
        { playId: spot.req.playId, campaignId: spot.req.campaignId },
      );
      spot.evidence.start();
    }
  }

  private onEndFile(e: EndFileEvent): void {
    const entry = e.playlistEntryId === undefined ? undefined : this.entries.get(e.playlistEntryId);
    if (e.playlistEntryId !== undefined) this.entries.delete(e.playlistEntryId);
    if (this.current && this.current.id === e.playlistEntryId) this.current = undefined;
    this.loopLoading = false;
    this.trace('end', entry, e.reason);
    if (entry?.kind === 'spot') {
      const outcome: Outcome = e.reason === 'eof' ? 'completed' : e.reason === 'error' ? 'failed' : 'interrupted';
      this.finishSpot(entry.spot, outcome, e.fileError ?? (outcome === 'completed' ? undefined : `end-file ${e.reason}`));
    } else if (entry?.kind === 'loop' && e.reason === 'error') {
      this.loopFailures++;
      this.ctx.log.warn({ clip: entry.clip.path, error: e.fileError }, 'loop clip failed to play');
    }
  }

  private onProperty(name: string, data: unknown): void {
    switch (name) {
      case 'time-pos':
        if (typeof data === 'number' && data !== this.timePos) this.posChangedAt = this.ctx.clock.monotonic();
        this.timePos = typeof data === 'number' ? data : undefined;
        break;
      case 'hwdec-current':
        if (typeof data === 'string') this.hwdec = data;
        break;
      case 'pause':
        this.paused.pause = data === true;
        break;
      case 'paused-for-cache':
        this.paused.cache = data === true;
        break;
      case 'idle-active':
        this.idle = data === true;
        if (this.idle) this.onIdle();
        else this.loopLoading = false;
        break;
    }
  }

  /** The playlist ran out: restart the loop, unless every loop clip just failed (then retry later, not in a tight loop). */
  private onIdle(): void {
    if (this.spot || this.loopLoading || !this.loop.length) return;
    if (this.loopFailures < this.loop.length) return this.resumeLoop();
    this.ctx.log.error({ clips: this.loop.length }, 'every loop clip failed: black screen, retrying in 10 s');
    this.loopRetry?.cancel();
    this.loopRetry = this.ctx.clock.setTimer(10_000, () => {
      this.loopFailures = 0;
      if (this.idle) this.resumeLoop();
    });
  }

  private finishSpot(spot: ActiveSpot, outcome: Outcome, detail?: string): void {
    if (spot.ended) return;
    spot.ended = true;
    spot.loadTimer?.cancel();
    spot.evidence?.stop();
    if (this.spot === spot) this.spot = undefined;
    this.safely(() => spot.handlers.onEnded(this.ctx.clock.now(), outcome, detail));
  }

  /** mpv repeats some warnings on every file (a missing hwdec driver): say each once, then only at debug. */
  private logMpv(line: string): void {
    if (this.logged.has(line)) return this.ctx.log.debug({ mpv: line }, 'mpv');
    if (this.logged.size < 500) this.logged.add(line);
    this.ctx.log.warn({ mpv: line }, 'mpv');
  }

  private safely(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.ctx.log.error({ err: e }, 'player handler threw');
    }
  }
}
