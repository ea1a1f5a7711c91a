import { randomUUID } from 'node:crypto';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import type { Campaign, Compliance, DisplayState, EpochMs, LocalDate, MediaRef, Outcome } from '../core/types.js';
import type { Clip } from '../core/clip.js';
import type { Player } from '../player/player.js';
import type { EffectiveState } from '../schedule/desired.js';
import { plan, type CatchUp, type Plan, type PlanInput } from '../schedule/planner.js';
import { Zone } from '../schedule/zoned.js';
import type { Store } from '../store/store.js';
import type { Events } from '../events/recorder.js';
import { ClockJumpDetector, FailureRests } from './guards.js';
import { DayLedger } from './ledger.js';

/** A slot whose timer fires later than this (process stalled, wall clock stepped) is not played: re-plan instead. */
const LATE_TOLERANCE_MS = 2_000;
/** Wake at least this often to re-plan (the day rolls over on time even if a timer was lost). */
const MAX_SLEEP_MS = 30_000;
/** Compare wall and monotonic time this often: a clock step is noticed within this (a cheap check, no store I/O). */
const JUMP_CHECK_MS = 2_000;
/** A play whose wall-clock and monotonic lengths differ by more than this ran across a clock step: its length is not learned. */
const LEARN_TOLERANCE_MS = 1_000;
/** Give the player the file this long before its instant. */
const PRELOAD_LEAD_MS = 3_000;

export interface EngineContext {
  clock: Clock;
  store: Store;
  player: Player;
  log: Logger;
  deviceId: string;
  timezone: string;
  /** What is in force now (merged assignments and overrides). */
  desired: () => EffectiveState;
  /** A verified local clip for the media, or undefined while it is not (yet) playable. */
  resolve: (media: MediaRef) => Clip | undefined;
  /** Learned clip length, by sha256. */
  durationOf?: (sha256: string) => number | undefined;
  learnDuration?: (sha256: string, ms: number) => void;
  display?: () => DisplayState;
  clockSynced?: () => boolean;
  /** Agent events (`clock-jump`). */
  events: Events;
  /** Play rows were added to the store's outbox. */
  onOutbox?: () => void;
  /** Observability: called with every new plan (benchmarks measure re-plan latency with it). */
  onPlanned?: (p: Plan, reason: string) => void;
  /** Longest sleep between re-plans (default 30 s); a virtual clock needs none. */
  maxSleepMs?: number;
  /** How often wall time is checked against monotonic time for steps (default 2 s; 0 = only at wakes). */
  jumpCheckMs?: number;
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

interface Due {
  campaignId: string;
  scheduledAt: EpochMs;
}

/**
 * Runs the planner's slots against a Clock and a Player and records every play in the Store.
 *
 * Invariants: at most one spot is in the player at a time (`current`); a slot is started only
 * when its timer fires within LATE_TOLERANCE_MS of its instant, so a stalled process or a wall
 * clock stepped forward never produces a burst of catch-up plays — the planner re-spreads the
 * remaining plays instead; counts come from the store, so restarts neither reset nor double-count.
 */
export class Engine {
  private readonly zone: Zone;
  private timer: TimerHandle | undefined;
  private jumpTimer: TimerHandle | undefined;
  private preloadTimer: TimerHandle | undefined;
  private current: Current | undefined;
  private queue: Due[] = [];
  private running = false;
  private lastPlan: Plan | undefined;
  private readonly jumps = new ClockJumpDetector();
  private readonly inflight = new Set<Promise<unknown>>();
  private replanning = false;
  private replanAgain = false;
  /** Catch-up spreads of campaigns that fell behind, fed back into the next plan (see planner). */
  private readonly catchUps = new Map<string, CatchUp & { day: LocalDate }>();
  private readonly rests = new FailureRests();
  private readonly ledger: DayLedger;
  /**
   * The planned instant of each campaign's last completed play, on monotonic time (the spacing
   * guard's "how long since"): planned, not started, so a start latency does not count as spacing lost.
   */
  private readonly lastShown = new Map<string, { day: LocalDate; mono: number }>();

  constructor(private readonly ctx: EngineContext) {
    this.zone = new Zone(ctx.timezone);
    this.ledger = new DayLedger({ store: ctx.store, log: ctx.log, zone: this.zone });
  }

  async start(): Promise<void> {
    const now = this.ctx.clock.now();
    // A play left open by a crash, kill -9 or power cut ended when we went down: close it as interrupted.
    const closed = await this.ctx.store.closeOpenPlays(now, this.ctx.deviceId, (id, day) => this.targetOf(id, day));
    if (closed.length > 0) {
      this.ctx.log.warn({ plays: closed.map((e) => e.eventId) }, 'closed plays left open by the last shutdown as interrupted');
      this.ctx.onOutbox?.();
    }
    const today = this.zone.localDateOf(now);
    await this.ledger.load(today);
    for (const p of await this.ctx.store.playsForDay(today)) {
      if (p.outcome === 'completed') this.lastShown.set(p.campaignId, { day: today, mono: this.ctx.clock.monotonic() - (now - Math.min(p.startedAt, p.scheduledAt)) });
    }
    this.running = true;
    this.jumps.observe(now, this.ctx.clock.monotonic());
    this.armJumpCheck();
    this.replan('start');
  }

  /** Stops scheduling. A spot already in the player is still recorded when the player ends it. */
  async stop(): Promise<void> {
    this.running = false;
    this.timer?.cancel();
    this.jumpTimer?.cancel();
    this.preloadTimer?.cancel();
    this.queue = [];
  }

  /** Resolves once every store write the engine started has finished (tests, simulate, shutdown). */
  async whenIdle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  /** The plan in force (after the last re-plan). */
  plan(): Plan | undefined {
    return this.lastPlan;
  }

  /** Re-plan now (desired state changed, media verified, an override arrived). */
  replan(reason: string): void {
    if (!this.running) return;
    if (this.replanning) {
      this.replanAgain = true;
      return;
    }
    this.replanning = true;
    this.track(
      (async () => {
        try {
          do {
            this.replanAgain = false;
            await this.replanOnce(reason);
          } while (this.replanAgain && this.running);
        } catch (e) {
          this.ctx.log.error({ err: e }, 'replan failed; retrying in 5 s');
          this.arm(this.ctx.clock.now() + 5_000);
        } finally {
          this.replanning = false;
        }
      })(),
    );
  }

  /** Plays a campaign's spot now (after the spot in the player, if any). Counts if it starts in a window. */
  playNow(campaignId: string): { queued: boolean } {
    const c = this.campaign(campaignId);
    if (!c) throw new Error(`no campaign ${campaignId} in force`);
    if (!this.ctx.resolve(c.media)) throw new Error(`media of ${campaignId} is not downloaded and verified yet`);
    const due = { campaignId, scheduledAt: this.ctx.clock.now() };
    if (this.current) {
      this.queue.push(due);
      return { queued: true };
    }
    this.startSpot(due);
    return { queued: false };
  }

  /** Compliance of a local day, per campaign active that day (today: as planned now). */
  async compliance(day: LocalDate = this.zone.localDateOf(this.ctx.clock.now())): Promise<Compliance[]> {
    const p = await this.planFor(day);
    return p.campaigns.map((c) => ({ campaignId: c.campaignId, day: c.day, played: c.played, target: c.target, onTrack: c.onTrack }));
  }

  /**
   * A plan of any day: today from now; a future day from its start; a past day as the ledger
   * says it was planned (targets and windows in force that day, the store's counts), or, for a
   * day the ledger does not know (before it existed), rebuilt from what is in force now.
   */
  async planFor(day: LocalDate): Promise<Plan> {
    const now = this.ctx.clock.now();
    const { start, end } = this.zone.dayBounds(day);
    const counts = await this.countsOf(day);
    if (end <= now) {
      const past = await this.ledger.planOf(day, counts);
      if (past) return past;
    }
    const at = Math.min(Math.max(now, start), end - 1);
    return plan(this.planInput(this.ctx.desired().campaigns, counts, at));
  }

  // --- internals

  /** The day's completed in-window plays per campaign, plus the spot in the player (it is under way). */
  private async countsOf(day: LocalDate): Promise<Map<string, number>> {
    const counts = await this.ctx.store.countCompleted(day);
    if (this.current && this.zone.localDateOf(this.current.requestedAt) === day) {
      counts.set(this.current.campaignId, (counts.get(this.current.campaignId) ?? 0) + 1);
    }
    return counts;
  }

  private planInput(campaigns: Campaign[], counts: Map<string, number>, now: EpochMs): PlanInput {
    const durations = new Map<string, number>();
    for (const c of campaigns) {
      const d = this.ctx.durationOf?.(c.media.sha256);
      if (d !== undefined) durations.set(c.id, d);
    }
    // Real time since each campaign's last start, carried to the wall clock of `now`.
    const mono = this.ctx.clock.monotonic();
    const day = this.zone.localDateOf(now);
    const lastStarts = new Map<string, EpochMs>();
    for (const [id, l] of this.lastShown) if (l.day === day) lastStarts.set(id, now - (mono - l.mono));
    const cur = this.current;
    if (cur && this.zone.localDateOf(cur.requestedAt) === day) lastStarts.set(cur.campaignId, now - (mono - plannedMono(cur)));
    return {
      campaigns,
      overrides: this.ctx.desired().overrides,
      counts,
      now,
      timezone: this.ctx.timezone,
      durations,
      catchUps: this.catchUps,
      zone: this.zone,
      lastStarts,
      ...(this.current ? { busyUntil: now + this.remainingMs(this.current) } : {}),
    };
  }

  /** How much longer the spot in the player should run, on monotonic time (a clock step does not stretch it). */
  private remainingMs(cur: Current): number {
    return Math.max(0, cur.expectedMs - (this.ctx.clock.monotonic() - (cur.startedMono ?? cur.requestedMono)));
  }

  private async replanOnce(reason: string): Promise<void> {
    this.detectJump(this.ctx.clock.now());
    const day = this.zone.localDateOf(this.ctx.clock.now());
    const counts = await this.countsOf(day);
    // After the store read: the plan starts from the time it is made.
    const now = this.ctx.clock.now();
    const mono = this.ctx.clock.monotonic();
    const all = this.ctx.desired().campaigns;
    let wakeAt = Infinity;
    const playable = all.filter((c) => {
      const until = this.rests.restingUntil(c.id, mono);
      if (until !== undefined) {
        wakeAt = Math.min(wakeAt, now + (until - mono));
        return false;
      }
      return this.ctx.resolve(c.media) !== undefined;
    });
    const p = plan(this.planInput(playable, counts, now));
    for (const c of p.campaigns) {
      if (c.catchUp) this.catchUps.set(c.campaignId, c.catchUp);
      else this.catchUps.delete(c.campaignId);
    }
    if (playable.length < all.length) {
      // Campaigns whose media is not verified yet still show in compliance, behind.
      const full = plan(this.planInput(all, counts, now));
      for (const c of full.campaigns) {
        if (!p.campaigns.some((x) => x.campaignId === c.campaignId)) p.campaigns.push({ ...c, planned: 0, onTrack: c.target <= c.played });
      }
    }
    this.lastPlan = p;
    this.ctx.onPlanned?.(p, reason);
    this.track(this.ledger.note(p, now));
    if (!this.running) return;
    this.ctx.log.debug({ reason, day, slots: p.slots.length, next: p.slots[0]?.at }, 'planned');
    const horizon = Math.min(p.replanAt, wakeAt, now + (this.ctx.maxSleepMs ?? MAX_SLEEP_MS));
    if (this.current) {
      this.arm(horizon);
      return;
    }
    const next = p.slots[0];
    this.arm(Math.min(next?.at ?? Infinity, horizon), next);
  }

  private arm(at: EpochMs, slot?: { campaignId: string; at: EpochMs }): void {
    this.timer?.cancel();
    this.preloadTimer?.cancel();
    const now = this.ctx.clock.now();
    if (slot && slot.at === at) {
      const c = this.campaign(slot.campaignId);
      const clip = c && this.ctx.resolve(c.media);
      if (clip && this.ctx.player.preload) {
        const preload = this.ctx.player.preload.bind(this.ctx.player);
        this.preloadTimer = this.ctx.clock.setTimer(at - PRELOAD_LEAD_MS - now, () => void preload(clip).catch(() => undefined));
      }
    }
    this.timer = this.ctx.clock.setTimer(at - now, () => this.wake(slot));
  }

  private wake(slot?: { campaignId: string; at: EpochMs }): void {
    if (!this.running) return;
    const now = this.ctx.clock.now();
    if (slot && !this.current && now >= slot.at && now - slot.at <= LATE_TOLERANCE_MS && !this.detectJump(now)) {
      this.startSpot({ campaignId: slot.campaignId, scheduledAt: slot.at });
      return;
    }
    this.replan(slot ? 'late-or-early slot' : 'timer');
  }

  /** The cheap periodic step check: a step re-plans at once instead of at the next slot or wake. */
  private armJumpCheck(): void {
    const every = this.ctx.jumpCheckMs ?? JUMP_CHECK_MS;
    if (every <= 0) return;
    this.jumpTimer = this.ctx.clock.setTimer(every, () => {
      if (!this.running) return;
      if (this.detectJump(this.ctx.clock.now())) this.replan('clock-jump');
      this.armJumpCheck();
    });
  }

  /** True (and a `clock-jump` event recorded) when the wall clock stepped since the last check. */
  private detectJump(now: EpochMs): boolean {
    const jump = this.jumps.observe(now, this.ctx.clock.monotonic());
    if (!jump) return false;
    this.ctx.log.warn({ deltaMs: jump.deltaMs }, 'wall clock jumped; re-planning from the new time');
    const detail = { from: new Date(jump.expected).toISOString(), to: new Date(now).toISOString(), deltaMs: jump.deltaMs };
    this.track(this.ctx.events.record('clock-jump', detail, detail.to));
    return true;
  }

  private campaign(id: string): Campaign | undefined {
    return this.ctx.desired().campaigns.find((c) => c.id === id);
  }

  private targetOf(campaignId: string, day: LocalDate): number {
    const p = this.lastPlan;
    if (p && p.day === day) return p.campaigns.find((c) => c.campaignId === campaignId)?.target ?? 0;
    const c = this.campaign(campaignId);
    if (!c) return 0;
    const { start } = this.zone.dayBounds(day);
    return plan(this.planInput([c], new Map(), start)).campaigns[0]?.target ?? 0;
  }

  private inWindow(campaignId: string, at: EpochMs): { day: LocalDate; inWindow: boolean; target: number } {
    const day = this.zone.localDateOf(at);
    let p = this.lastPlan;
    if (!p || p.day !== day) {
      const c = this.campaign(campaignId);
      p = plan(this.planInput(c ? [c] : [], new Map(), at));
    }
    const cp = p.campaigns.find((c) => c.campaignId === campaignId);
    const inWindow = !!cp && cp.windows.some((w) => at >= w.start && at < w.end);
    return { day, inWindow, target: cp?.target ?? 0 };
  }

  private startSpot(due: Due): void {
    const c = this.campaign(due.campaignId);
    const clip = c && this.ctx.resolve(c.media);
    if (!c || !clip) {
      this.replan('spot not playable');
      return;
    }
    this.timer?.cancel();
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
          this.track(cur.row.then((row) => this.ctx.log.info({ campaignId: cur.campaignId, row, lateMs: at - cur.scheduledAt }, 'spot started')));
        },
        onEnded: (at, outcome, detail) => {
          if (ended) return;
          ended = true;
          this.track(this.finish(cur, at, outcome, detail));
        },
      },
    );
    this.track(
      accepted.catch((e: unknown) => {
        if (ended) return;
        ended = true;
        return this.finish(cur, this.ctx.clock.now(), 'failed', (e as Error).message);
      }),
    );
  }

  private recordStart(cur: Current, at: EpochMs): Promise<number> {
    const w = this.inWindow(cur.campaignId, at);
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
      const w = this.inWindow(cur.campaignId, startedAt);
      const ev = await this.ctx.store.recordPlayEnd(rowId, { endedAt: startedAt + durationMs, durationMs, outcome, target: w.target }, this.ctx.deviceId);
      if (outcome === 'completed') {
        if (Math.abs(at - startedAt - durationMs) <= LEARN_TOLERANCE_MS) this.ctx.learnDuration?.(cur.sha256, durationMs);
        else this.ctx.log.warn({ campaignId: cur.campaignId, durationMs, wallMs: at - startedAt }, 'the clock stepped during the spot; its length is not learned');
        this.rests.completed(cur.campaignId);
        this.lastShown.set(cur.campaignId, { day: w.day, mono: plannedMono(cur) });
      } else if (outcome === 'failed') {
        // Only a failed load rests the campaign; an interrupted spot (player or power died) retries at once.
        this.rests.failed(cur.campaignId, mono);
      }
      this.ctx.log.info({ campaignId: cur.campaignId, outcome, seq: ev.seq, played: ev.played, target: ev.target, lateMs: startedAt - cur.scheduledAt, detail }, 'spot ended');
      this.ctx.onOutbox?.();
    } catch (e) {
      this.ctx.log.error({ err: e, campaignId: cur.campaignId }, 'could not record the end of a play');
    } finally {
      if (this.current === cur) this.current = undefined;
      const next = this.queue.shift();
      if (next && this.running) this.startSpot(next);
      else this.replan('spot ended');
    }
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p)).catch(() => undefined);
    return p;
  }
}

/** The monotonic instant a spot was planned for: its start less how late it started. */
function plannedMono(cur: Current): number {
  const startedMono = cur.startedMono ?? cur.requestedMono;
  const late = (cur.startedAt ?? cur.requestedAt) - cur.scheduledAt;
  return late > 0 ? startedMono - late : startedMono;
}
