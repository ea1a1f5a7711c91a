import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import type { Clip } from '../core/clip.js';
import { guarded } from './guarded.js';
import type { EndFileEvent, MpvIpc } from './mpv-ipc.js';

/** A file in mpv's playlist: a loop clip (with its place in the loop) or the player's spot `S`. */
export type Entry<S> = { kind: 'loop'; clip: Clip; index: number } | { kind: 'spot'; clip: Clip; spot: S };

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

/** The file mpv has started and not ended; `restarted` once its first frame was shown. */
export interface Playing<S> {
  entry: Entry<S> | undefined;
  restarted: boolean;
}

export interface PlaylistContext {
  clock: Clock;
  log: Logger;
  /** The mpv connection of the moment (possibly still starting), undefined while mpv is down. */
  mpv(): Pick<MpvIpc, 'command'> | undefined;
  /** mpv is up and observed: loads may go out. */
  ready(): boolean;
  /** A spot is accepted and not over: the loop waits behind it. */
  spotActive(): boolean;
  /** Sees every file mpv starts, shows and ends. */
  trace?: (e: PlaybackTrace) => void;
}

/** After every loop clip failed, the wait before trying the loop again. */
const ALL_FAILED_RETRY_MS = 10_000;

/**
 * The loop as mpv plays it: loop clips are queued one ahead in mpv's playlist (gapless, mpv never
 * stopped); a spot replaces the playing file at once with the next loop clip queued behind it.
 * Fed mpv's start-file / playback-restart / end-file / idle-active; knows nothing of a spot's
 * handlers, timers or evidence (the player's), only that one is active.
 */
export class MpvPlaylist<S> {
  private clips: Clip[] = [];
  private index = 0;
  private failures = 0;
  private retry: TimerHandle | undefined;
  /**
   * A `loadfile … replace` of the loop is on its way. mpv's idle-active notifications lag (the
   * first one comes after `observe_property` answered), so an idle report may predate that load;
   * reloading on it would cut the clip that is starting.
   */
  private loading = false;
  private readonly entries = new Map<number, Entry<S>>();
  private current: ({ id: number | undefined } & Playing<S>) | undefined;
  private idle = true;

  constructor(private readonly ctx: PlaylistContext) {}

  /** A new mpv: its playlist is empty and nothing plays. */
  reset(): void {
    this.entries.clear();
    this.current = undefined;
    this.idle = true;
    this.loading = false;
  }

  stop(): void {
    this.retry?.cancel();
  }

  /** What mpv shows, or undefined when it is idle (the screen is black). */
  playing(): Playing<S> | undefined {
    return this.current && !this.idle ? this.current : undefined;
  }

  setLoop(clips: Clip[]): void {
    this.clips = [...clips];
    this.index = 0;
    this.failures = 0;
    this.retry?.cancel();
    if (!this.ctx.ready()) return; // the player resumes the loop once mpv is up
    if (this.ctx.spotActive() || (this.current && !this.idle)) {
      // Whatever plays finishes (a spot is never cut, a loop clip plays out); the new loop follows.
      this.send(['playlist-clear']);
      if (this.clips.length) this.queue(0, 'append');
    } else {
      this.resume();
    }
  }

  /**
   * Replaces whatever plays with the spot, the loop queued behind it (it follows without a gap,
   * and at once if the spot fails). Settles with mpv's answer to the spot's loadfile.
   */
  loadSpot(clip: Clip, spot: S): Promise<unknown> {
    this.retry?.cancel();
    const loaded = this.load({ kind: 'spot', clip, spot }, 'replace');
    if (this.clips.length) this.queue(this.index, 'append');
    return loaded;
  }

  /** Cuts the playing file (a spot that never showed a frame); mpv goes on to the queued loop clip. */
  skip(): void {
    this.send(['playlist-next', 'force']);
  }

  /** Starts the loop where it stands, unless a spot plays or the loop is empty. */
  resume(): void {
    if (!this.ctx.ready() || this.ctx.spotActive() || !this.clips.length) return;
    this.loading = true;
    this.queue(this.index, 'replace');
  }

  onStartFile(id: number | undefined): Entry<S> | undefined {
    const entry = id === undefined ? undefined : this.entries.get(id);
    this.current = { id, entry, restarted: false };
    this.trace('start', entry);
    if (entry?.kind !== 'loop') return entry;
    this.index = entry.index + 1;
    // Keep exactly one loop clip queued behind the playing one; mpv prefetches it.
    if (this.ctx.spotActive() || this.failures >= this.clips.length) return entry;
    this.send(['playlist-clear']);
    this.queue(this.index, 'append');
    return entry;
  }

  /** The playing file's first frame, or undefined for a later playback-restart (a seek). */
  onPlaybackRestart(): Playing<S> | undefined {
    const cur = this.current;
    if (!cur || cur.restarted) return undefined;
    cur.restarted = true;
    this.loading = false;
    this.trace('playing', cur.entry);
    if (cur.entry?.kind === 'loop') this.failures = 0;
    return cur;
  }

  onEndFile(e: EndFileEvent): Entry<S> | undefined {
    const entry = e.playlistEntryId === undefined ? undefined : this.entries.get(e.playlistEntryId);
    if (e.playlistEntryId !== undefined) this.entries.delete(e.playlistEntryId);
    if (this.current && this.current.id === e.playlistEntryId) this.current = undefined;
    this.loading = false;
    this.trace('end', entry, e.reason);
    if (entry?.kind === 'loop' && e.reason === 'error') {
      this.failures++;
      this.ctx.log.warn({ clip: entry.clip.path, error: e.fileError }, 'loop clip failed to play');
    }
    return entry;
  }

  onIdleActive(idle: boolean): void {
    this.idle = idle;
    if (idle) this.onIdle();
    else this.loading = false;
  }

  /** The playlist ran out: restart the loop, unless every loop clip just failed (then retry later, not in a tight loop). */
  private onIdle(): void {
    if (this.ctx.spotActive() || this.loading || !this.clips.length) return;
    if (this.failures < this.clips.length) return this.resume();
    this.ctx.log.error({ clips: this.clips.length }, 'every loop clip failed: black screen, retrying in 10 s');
    this.retry?.cancel();
    this.retry = this.ctx.clock.setTimer(ALL_FAILED_RETRY_MS, () => {
      this.failures = 0;
      if (this.idle) this.resume();
    });
  }

  private trace(event: PlaybackTrace['event'], entry: Entry<S> | undefined, reason?: string): void {
    const tr = this.ctx.trace;
    if (!tr) return;
    const e: PlaybackTrace = { event, kind: entry?.kind ?? 'unknown', mono: this.ctx.clock.monotonic() };
    if (entry) e.path = entry.clip.path;
    if (reason) e.reason = reason;
    guarded(this.ctx.log, () => tr(e));
  }

  private send(args: unknown[]): void {
    this.ctx.mpv()?.command(args).catch((e: Error) => this.ctx.log.debug({ err: e.message, args }, 'mpv command failed'));
  }

  private load(entry: Entry<S>, mode: 'replace' | 'append'): Promise<unknown> {
    const mpv = this.ctx.mpv();
    if (!mpv) return Promise.reject(new Error('player is down'));
    return mpv.command(['loadfile', entry.clip.path, mode], {
      onReply: (d) => {
        const id = (d as { playlist_entry_id?: unknown } | null)?.playlist_entry_id;
        if (typeof id === 'number') this.entries.set(id, entry);
      },
    });
  }

  private queue(index: number, mode: 'replace' | 'append'): void {
    const n = this.clips.length;
    const clip = this.clips[index % n];
    if (!clip) return;
    this.load({ kind: 'loop', clip, index: index % n }, mode).catch((e: Error) =>
      this.ctx.log.debug({ err: e.message }, 'loop loadfile failed'),
    );
  }
}
