// size: plans, slot timers, spots, clock-step checks and the alert preemption meet here; the alert rules
// themselves live in alerts/ and engine/alert-hook.ts, the spots in spot-runner.ts.
import type { TimerHandle } from '../core/clock.js';
import type { Campaign, Compliance, EpochMs, LocalDate } from '../core/types.js';
import type { EffectiveState } from '../schedule/desired.js';
import { plan, type CatchUp, type Plan, type PlanInput, type WindowSpan } from '../schedule/planner.js';
import { Zone } from '../schedule/zoned.js';
import type { Events } from '../events/recorder.js';
import { cutForAlert, startDueAlert, type AlertHook } from './alert-hook.js';
import { ComplianceBook } from './compliance.js';
import { ClockJumpDetector, FailureRests } from './guards.js';
import { DayLedger } from './ledger.js';
import { SpotRunner, type SpotRunnerContext } from './spot-runner.js';

/** A slot whose timer fires later than this (process stalled, wall clock stepped) is not played: re-plan instead. */
const LATE_TOLERANCE_MS = 2_000;
/** Wake at least this often to re-plan (the day rolls over on time even if a timer was lost). */
const MAX_SLEEP_MS = 30_000;
/** Compare wall and monotonic time this often: a clock step is noticed within this (a cheap check, no store I/O). */
const JUMP_CHECK_MS = 2_000;
/** Give the player the file this long before its instant. */
const PRELOAD_LEAD_MS = 3_000;

export interface EngineContext extends SpotRunnerContext {
  timezone: string;
  /** What is in force now (merged assignments and overrides). */
  desired: () => EffectiveState;
  /** Agent events (`clock-jump`). */
  events: Events;
  alerts?: AlertHook; // §10: what preempts the spots and what the plan goes around
  /** Observability: called with every new plan (benchmarks measure re-plan latency with it). */
  onPlanned?: (p: Plan, reason: string) => void;
  /** Longest sleep between re-plans (default 30 s); a virtual clock needs none. */
  maxSleepMs?: number;
  /** How often wall time is checked against monotonic time for steps (default 2 s; 0 = only at wakes). */
  jumpCheckMs?: number;
  /** §11: the standby instants of the day of `at` (display/); the planner cuts them out of every window. */
  powerOff?: (at: EpochMs) => WindowSpan[];
  /** §11: the screen is in standby now: a play-now is refused (no play happens in standby). */
  standby?: () => boolean;
}

/**
 * Runs the planner's slots against a Clock and a Player; SpotRunner plays them and records every
 * play in the Store, ComplianceBook answers what each day owes and got.
 *
 * Invariants: at most one spot is in the player at a time (SpotRunner); a slot is started only
 * when its timer fires within LATE_TOLERANCE_MS of its instant, so a stalled process or a wall
 * clock stepped forward never produces a burst of catch-up plays — the planner re-spreads the
 * remaining plays instead; counts come from the store, so restarts neither reset nor double-count.
 */
export class Engine {
  private readonly zone: Zone;
  private timer: TimerHandle | undefined;
  private jumpTimer: TimerHandle | undefined;
  private preloadTimer: TimerHandle | undefined;
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
  private readonly book: ComplianceBook;
  private readonly spots: SpotRunner;

  constructor(private readonly ctx: EngineContext) {
    this.zone = new Zone(ctx.timezone);
    this.ledger = new DayLedger({ store: ctx.store, log: ctx.log, zone: this.zone });
    this.book = new ComplianceBook({
      clock: ctx.clock,
      store: ctx.store,
      zone: this.zone,
      ledger: this.ledger,
      campaigns: () => ctx.desired().campaigns,
      lastPlan: () => this.lastPlan,
      underWay: () => this.spots.underWay(),
      planInput: (campaigns, counts, at) => this.planInput(campaigns, counts, at),
    });
    this.spots = new SpotRunner(ctx, {
      zone: this.zone,
      book: this.book,
      rests: this.rests,
      campaign: (id) => this.campaign(id),
      running: () => this.running,
      replan: (reason) => this.replan(reason),
      cancelWake: () => this.timer?.cancel(),
      track: (p) => this.track(p),
    });
  }

  async start(): Promise<void> {
    const now = this.ctx.clock.now();
    // A play left open by a crash, kill -9 or power cut ended when we went down: close it as interrupted.
    const closed = await this.ctx.store.closeOpenPlays(now, this.ctx.deviceId, (id, day) => this.book.targetOf(id, day));
    if (closed.length > 0) {
      this.ctx.log.warn({ plays: closed.map((e) => e.eventId) }, 'closed plays left open by the last shutdown as interrupted');
      this.ctx.onOutbox?.();
    }
    const today = this.zone.localDateOf(now);
    await this.ledger.load(today);
    for (const p of await this.ctx.store.playsForDay(today)) {
      if (p.outcome === 'completed') this.spots.noteShown(p.campaignId, today, now - Math.min(p.startedAt, p.scheduledAt));
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
    this.spots.clearQueue();
  }

  /** Resolves once every store write the engine started has finished (tests, simulate, shutdown). */
  async whenIdle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  /** A spot in the player, and how long until the next planned one (issue 13: an update restarts the agent only in a gap). */
  spotGap(now: EpochMs): { spotUnderWay: boolean; nextSpotInMs?: number } {
    const next = this.lastPlan?.slots.find((s) => s.at >= now);
    return { spotUnderWay: this.spots.busy(), ...(next ? { nextSpotInMs: next.at - now } : {}) };
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
    if (this.ctx.standby?.()) throw new Error('the screen is in standby by its display schedule: nothing plays until its next power window');
    if (!this.ctx.resolve(c.media)) throw new Error(`media of ${campaignId} is not downloaded and verified yet`);
    // Issue 10 item 6: one spot of a campaign waiting at a time, so repeated play-nows (each
    // within the command's rate limit) cannot stack a campaign ahead of all the others. The one
    // on screen does not count: "play it now" while it plays means "again, right after".
    if (this.spots.waiting(campaignId)) throw new Error(`${campaignId} already has a spot waiting for the player; not queued twice`);
    return this.spots.request({ campaignId, scheduledAt: this.ctx.clock.now() });
  }

  /** Compliance of a local day, per campaign active that day (today: as planned now). */
  async compliance(day?: LocalDate): Promise<Compliance[]> {
    return this.book.compliance(day);
  }

  /** A plan of any day (see ComplianceBook.planFor). */
  async planFor(day: LocalDate): Promise<Plan> {
    return this.book.planFor(day);
  }

  // --- internals

  private planInput(campaigns: Campaign[], counts: Map<string, number>, now: EpochMs): PlanInput {
    const durations = new Map<string, number>();
    for (const c of campaigns) {
      const d = this.ctx.durationOf?.(c.media.sha256);
      if (d !== undefined) durations.set(c.id, d);
    }
    const remaining = this.spots.remainingMs();
    return {
      campaigns,
      overrides: this.ctx.desired().overrides,
      counts,
      now,
      timezone: this.ctx.timezone,
      durations,
      catchUps: this.catchUps,
      zone: this.zone,
      lastStarts: this.spots.lastStarts(this.zone.localDateOf(now), now),
      ...(remaining !== undefined ? { busyUntil: now + remaining } : {}),
      ...(this.ctx.powerOff || this.ctx.alerts ? { blocked: [...(this.ctx.powerOff?.(now) ?? []), ...(this.ctx.alerts?.blocked(now) ?? [])] } : {}),
    };
  }

  private async replanOnce(reason: string): Promise<void> {
    this.detectJump(this.ctx.clock.now());
    const day = this.zone.localDateOf(this.ctx.clock.now());
    const counts = await this.book.countsOf(day);
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
    const horizon = Math.min(p.replanAt, wakeAt, now + (this.ctx.maxSleepMs ?? MAX_SLEEP_MS), this.ctx.alerts?.nextAt(now) ?? Infinity);
    if (startDueAlert(this.ctx.alerts, this.spots, now) || this.spots.busy()) {
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
    if (slot && !this.spots.busy() && now >= slot.at && now - slot.at <= LATE_TOLERANCE_MS && !this.detectJump(now)) {
      this.spots.start({ campaignId: slot.campaignId, scheduledAt: slot.at });
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

  /** §10: the alerts changed (one started, ended, became playable, a repeat fell due): cut, start or re-plan. */
  alertsChanged(reason: string): void {
    if (this.running && !cutForAlert(this.ctx.alerts, this.spots, this.ctx, reason) && !startDueAlert(this.ctx.alerts, this.spots, this.ctx.clock.now())) this.replan(reason);
  }

  private campaign(id: string): Campaign | undefined {
    return this.ctx.desired().campaigns.find((c) => c.id === id) ?? this.ctx.alerts?.campaign(id);
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p)).catch(() => undefined);
    return p;
  }
}
