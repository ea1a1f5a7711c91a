import type { Clock } from '../core/clock.js';
import type { Campaign, Compliance, EpochMs, LocalDate } from '../core/types.js';
import { plan, type Plan, type PlanInput } from '../schedule/planner.js';
import type { Zone } from '../schedule/zoned.js';
import type { Store } from '../store/store.js';
import type { DayLedger } from './ledger.js';

export interface ComplianceContext {
  clock: Clock;
  store: Store;
  zone: Zone;
  ledger: DayLedger;
  /** The campaigns in force now. */
  campaigns(): Campaign[];
  /** The plan in force (after the engine's last re-plan). */
  lastPlan(): Plan | undefined;
  /** The spot in the player: it counts for the day it was asked on while it is under way. */
  underWay(): { campaignId: string; requestedAt: EpochMs } | undefined;
  /** The planner's input for these campaigns and counts at `at`, as the engine plans. */
  planInput(campaigns: Campaign[], counts: Map<string, number>, at: EpochMs): PlanInput;
}

/**
 * What each day owes and got, from the store's counts: compliance per campaign (status,
 * heartbeat, the `report` command), the plan of any day, and for each play the facts that
 * decide whether it counts (its day, whether it fell in a window, the day's target).
 */
export class ComplianceBook {
  constructor(private readonly ctx: ComplianceContext) {}

  /** Compliance of a local day, per campaign active that day (today: as planned now). */
  async compliance(day: LocalDate = this.ctx.zone.localDateOf(this.ctx.clock.now())): Promise<Compliance[]> {
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
    const { start, end } = this.ctx.zone.dayBounds(day);
    const counts = await this.countsOf(day);
    if (end <= now) {
      const past = await this.ctx.ledger.planOf(day, counts);
      if (past) return past;
    }
    const at = Math.min(Math.max(now, start), end - 1);
    return plan(this.ctx.planInput(this.ctx.campaigns(), counts, at));
  }

  /** The day's completed in-window plays per campaign, plus the spot in the player (it is under way). */
  async countsOf(day: LocalDate): Promise<Map<string, number>> {
    const counts = await this.ctx.store.countCompleted(day);
    const cur = this.ctx.underWay();
    if (cur && this.ctx.zone.localDateOf(cur.requestedAt) === day) {
      counts.set(cur.campaignId, (counts.get(cur.campaignId) ?? 0) + 1);
    }
    return counts;
  }

  /** The target a play of `day` is recorded against. */
  targetOf(campaignId: string, day: LocalDate): number {
    const p = this.ctx.lastPlan();
    if (p && p.day === day) return p.campaigns.find((c) => c.campaignId === campaignId)?.target ?? 0;
    const c = this.campaign(campaignId);
    if (!c) return 0;
    const { start } = this.ctx.zone.dayBounds(day);
    return plan(this.ctx.planInput([c], new Map(), start)).campaigns[0]?.target ?? 0;
  }

  /** A play started at `at`: its day, whether it counts (inside one of the campaign's windows), the day's target. */
  inWindow(campaignId: string, at: EpochMs): { day: LocalDate; inWindow: boolean; target: number } {
    const day = this.ctx.zone.localDateOf(at);
    let p = this.ctx.lastPlan();
    if (!p || p.day !== day) {
      const c = this.campaign(campaignId);
      p = plan(this.ctx.planInput(c ? [c] : [], new Map(), at));
    }
    const cp = p.campaigns.find((c) => c.campaignId === campaignId);
    const inWindow = !!cp && cp.windows.some((w) => at >= w.start && at < w.end);
    return { day, inWindow, target: cp?.target ?? 0 };
  }

  private campaign(id: string): Campaign | undefined {
    return this.ctx.campaigns().find((c) => c.id === id);
  }
}
