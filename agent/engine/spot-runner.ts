import { randomUUID } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import type { Clip } from '../core/clip.js';
import type { Logger } from '../core/log.js';
import type { Campaign, DisplayState, EpochMs, LocalDate, MediaRef, Outcome } from '../core/types.js';
import type { Player } from '../player/player.js';
import type { Zone } from '../schedule/zoned.js';
import type { Store } from '../store/store.js';
import type { ComplianceBook } from './compliance.js';
import type { FailureRests } from './guards.js';

/** A play whose wall-clock and monotonic lengths differ by more than this ran across a clock step: its length is not learned. */
const LEARN_TOLERANCE_MS = 1_000;

export interface Due {
  campaignId: string;
  scheduledAt: EpochMs;
}

interface Current {
  playId: string;
  campaignId: string;
  sha256: string;
  scheduledAt: EpochMs;
  requestedAt: EpochMs;
  /** Monotonic instants: a play's length is measured on them, never on the wall clock. */
  requestedMono: number;
  startedMono?: number;
  expectedMs: number;
  row?: Promise<number>;
  startedAt?: EpochMs;
}

/** The part of the engine's context that plays and records spots. */
export interface SpotRunnerContext {
  clock: Clock;
  store: Store;
  player: Player;
  log: Logger;
  deviceId: string;
  /** A verified local clip for the media, or undefined while it is not (yet) playable. */
  resolve: (media: MediaRef) => Clip | undefined;
  /** Learned clip length, by sha256. */
  durationOf?: (sha256: string) => number | undefined;
  learnDuration?: (sha256: string, ms: number) => void;
  display?: () => DisplayState;
  clockSynced?: () => boolean;
  /** Rows were added to the store's outbox. */
  onOutbox?: () => void;
}

/** What the runner needs of the engine around it. */
export interface SpotHost {
  zone: Zone;
  book: ComplianceBook;
  rests: FailureRests;
  campaign(id: string): Campaign | undefined;
  running(): boolean;
  replan(reason: string): void;
  /** A spot goes in the player: the pending slot timer is void (the end of the spot re-plans). */
  cancelWake(): void;
  track<T>(p: Promise<T>): Promise<T>;
}

/**
 * One spot at a time in the player, the rest queued behind it, each play's start and end
 * recorded in the store; a play's length is measured on monotonic time.
 */
export class SpotRunner {
  private current: Current | undefined;
  private queue: Due[] = [];
  /**
   * The planned instant of each campaign's last completed play, on monotonic time (the spacing
   * guard's "how long since"): planned, not started, so a start latency does not count as spacing lost.
   */
  private readonly lastShown = new Map<string, { day: LocalDate; mono: number }>();

  constructor(
    private readonly ctx: SpotRunnerContext,
    private readonly host: SpotHost,
  ) {}

  busy(): boolean {
    return this.current !== undefined;
  }

  /** The spot in the player, if any. */
  underWay(): { campaignId: string; requestedAt: EpochMs } | undefined {
    return this.current;
  }

  /** A completed play of `campaignId` today, `agoMs` before now (the store's plays, at start). */
  noteShown(campaignId: string, day: LocalDate, agoMs: number): void {
    this.lastShown.set(campaignId, { day, mono: this.ctx.clock.monotonic() - agoMs });
  }

  /** Real time since each campaign's last start on `day`, carried to the wall clock of `now`. */
  lastStarts(day: LocalDate, now: EpochMs): Map<string, EpochMs> {
    const mono = this.ctx.clock.monotonic();
    const lastStarts = new Map<string, EpochMs>();
    for (const [id, l] of this.lastShown) if (l.day === day) lastStarts.set(id, now - (mono - l.mono));
    const cur = this.current;
    if (cur && this.host.zone.localDateOf(cur.requestedAt) === day) lastStarts.set(cur.campaignId, now - (mono - plannedMono(cur)));
    return lastStarts;
  }

  /** How much longer the spot in the player should run, on monotonic time (a clock step does not stretch it). */
  remainingMs(): number | undefined {
    const cur = this.current;
    if (!cur) return undefined;
    return Math.max(0, cur.expectedMs - (this.ctx.clock.monotonic() - (cur.startedMono ?? cur.requestedMono)));
  }

  /** A spot of the campaign is waiting for the player (the one on screen does not count). */
  waiting(campaignId: string): boolean {
    return this.queue.some((d) => d.campaignId === campaignId);
  }

  /** Starts the spot now, or after the one in the player. */
  request(due: Due): { queued: boolean } {
    if (this.current) {
      this.queue.push(due);
      return { queued: true };
    }
    this.start(due);
    return { queued: false };
  }

  clearQueue(): void {
    this.queue = [];
  }

  start(due: Due): void {
    const c = this.host.campaign(due.campaignId);
    const clip = c && this.ctx.resolve(c.media);
    if (!c || !clip) {
      this.host.replan('spot not playable');
      return;
    }
    this.host.cancelWake();
    const now = this.ctx.clock.now();
    const cur: Current = {
      playId: randomUUID(),
      campaignId: c.id,
      sha256: c.media.sha256,
      scheduledAt: due.scheduledAt,
      requestedAt: now,
      requestedMono: this.ctx.clock.monotonic(),
      expectedMs: this.ctx.durationOf?.(c.media.sha256) ?? clip.durationMs ?? c.media.durationMs ?? 30_000,
    };
    this.current = cur;
    let ended = false;
    const accepted = this.ctx.player.playSpot(
      { playId: cur.playId, campaignId: c.id, clip },
      {
        onStarted: (at) => {
          if (ended || cur.row) return;
          cur.startedAt = at;
          cur.startedMono = this.ctx.clock.monotonic() - Math.max(0, this.ctx.clock.now() - at);
          cur.row = this.recordStart(cur, at);
          // Logged once the row is durable: from here on a crash leaves proof of an interrupted play.
          this.host.track(cur.row.then((row) => this.ctx.log.info({ campaignId: cur.campaignId, row, lateMs: at - cur.scheduledAt }, 'spot started')));
        },
        onEnded: (at, outcome, detail) => {
          if (ended) return;
          ended = true;
          this.host.track(this.finish(cur, at, outcome, detail));
        },
      },
    );
    this.host.track(
      accepted.catch((e: unknown) => {
        if (ended) return;
        ended = true;
        return this.finish(cur, this.ctx.clock.now(), 'failed', (e as Error).message);
      }),
    );
  }

  private recordStart(cur: Current, at: EpochMs): Promise<number> {
    const w = this.host.book.inWindow(cur.campaignId, at);
    return this.ctx.store.recordPlayStart({
      campaignId: cur.campaignId,
      mediaSha256: cur.sha256,
      day: w.day,
      scheduledAt: cur.scheduledAt,
      startedAt: at,
      inWindow: w.inWindow,
      display: this.ctx.display?.() ?? 'unknown',
      clockSynced: this.ctx.clockSynced?.() ?? false,
      expectedMs: cur.expectedMs,
    });
  }

  private async finish(cur: Current, at: EpochMs, outcome: Outcome, detail?: string): Promise<void> {
    // The length is monotonic and endedAt follows from it: a wall-clock step mid-spot (NTP)
    // neither stretches a play to an hour nor makes it end before it started.
    const mono = this.ctx.clock.monotonic();
    try {
      // A spot that never started (load failure) is still proof: a failed play at the time it was asked for.
      const startedAt = cur.startedAt ?? cur.requestedAt;
      const durationMs = Math.max(0, Math.round(mono - (cur.startedMono ?? cur.requestedMono)));
      const rowId = await (cur.row ?? this.recordStart(cur, startedAt));
      const w = this.host.book.inWindow(cur.campaignId, startedAt);
      const ev = await this.ctx.store.recordPlayEnd(rowId, { endedAt: startedAt + durationMs, durationMs, outcome, target: w.target }, this.ctx.deviceId);
      if (outcome === 'completed') {
        if (Math.abs(at - startedAt - durationMs) <= LEARN_TOLERANCE_MS) this.ctx.learnDuration?.(cur.sha256, durationMs);
        else this.ctx.log.warn({ campaignId: cur.campaignId, durationMs, wallMs: at - startedAt }, 'the clock stepped during the spot; its length is not learned');
        this.host.rests.completed(cur.campaignId);
        this.lastShown.set(cur.campaignId, { day: w.day, mono: plannedMono(cur) });
      } else if (outcome === 'failed') {
        // Only a failed load rests the campaign; an interrupted spot (player or power died) retries at once.
        this.host.rests.failed(cur.campaignId, mono);
      }
      this.ctx.log.info({ campaignId: cur.campaignId, outcome, seq: ev.seq, played: ev.played, target: ev.target, lateMs: startedAt - cur.scheduledAt, detail }, 'spot ended');
      this.ctx.onOutbox?.();
    } catch (e) {
      this.ctx.log.error({ err: e, campaignId: cur.campaignId }, 'could not record the end of a play');
    } finally {
      if (this.current === cur) this.current = undefined;
      const next = this.queue.shift();
      if (next && this.host.running()) this.start(next);
      else this.host.replan('spot ended');
    }
  }
}

/** The monotonic instant a spot was planned for: its start less how late it started. */
function plannedMono(cur: Current): number {
  const startedMono = cur.startedMono ?? cur.requestedMono;
  const late = (cur.startedAt ?? cur.requestedAt) - cur.scheduledAt;
  return late > 0 ? startedMono - late : startedMono;
}
