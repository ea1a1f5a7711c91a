import type { Logger } from '../core/log.js';
import type { EpochMs, LocalDate } from '../core/types.js';
import type { CampaignPlan, Plan } from '../schedule/planner.js';
import type { Zone } from '../schedule/zoned.js';
import type { LedgerEntry, Store } from '../store/store.js';

/**
 * The per-day ledger of PROTOCOL v1.1 §7: each day's targets and windows as planned, kept in
 * the store so that a past day's report is answered from what was in force that day.
 * Written only when a campaign's target, windows or override flag change (compared with the
 * last entry written, kept in memory), never per heartbeat or per wake: an idle screen writes
 * nothing, and a day costs one row per campaign plus one per override change.
 */
export class DayLedger {
  private readonly written = new Map<string, string>();

  constructor(private readonly ctx: { store: Store; log: Logger; zone: Zone }) {}

  /** Seeds the memory from the store, so a restart does not rewrite what is already there. */
  async load(day: LocalDate): Promise<void> {
    for (const e of await this.ctx.store.ledgerOf(day)) this.written.set(keyOf(e.day, e.campaignId), fingerprint(e));
  }

  /** Writes the entries of the plan that differ from the last ones written. */
  async note(p: Plan, at: EpochMs): Promise<void> {
    const changed: LedgerEntry[] = [];
    for (const c of p.campaigns) {
      const e: LedgerEntry = { day: c.day, campaignId: c.campaignId, target: c.target, windows: c.windows.map((w) => ({ start: w.start, end: w.end })), overridden: c.overridden };
      const k = keyOf(e.day, e.campaignId);
      const f = fingerprint(e);
      if (this.written.get(k) === f) continue;
      changed.push(e);
    }
    if (changed.length === 0) return;
    try {
      await this.ctx.store.recordLedger(changed, at);
      for (const e of changed) this.written.set(keyOf(e.day, e.campaignId), fingerprint(e));
      // Yesterday's entries are never compared again.
      for (const k of this.written.keys()) if (!k.startsWith(`${p.day}|`)) this.written.delete(k);
    } catch (err) {
      // Not remembered as written: the next plan tries again.
      this.ctx.log.error({ err, day: p.day }, 'could not write the day ledger');
    }
  }

  /** A past day as it was planned, with the store's counts; undefined when the ledger has no entry for it. */
  async planOf(day: LocalDate, counts: Map<string, number>): Promise<Plan | undefined> {
    const entries = await this.ctx.store.ledgerOf(day);
    if (entries.length === 0) return undefined;
    const { start, end } = this.ctx.zone.dayBounds(day);
    const campaigns: CampaignPlan[] = entries.map((e) => {
      const played = counts.get(e.campaignId) ?? 0;
      const total = e.windows.reduce((t, w) => t + (w.end - w.start), 0);
      const spacingMs = e.target > 0 && total > 0 ? total / e.target : Infinity;
      return { campaignId: e.campaignId, day, target: e.target, played, planned: 0, onTrack: played >= e.target, windows: e.windows, overridden: e.overridden, spacingMs };
    });
    return { day, dayStart: start, dayEnd: end, slots: [], campaigns, replanAt: end };
  }
}

const keyOf = (day: LocalDate, campaignId: string): string => `${day}|${campaignId}`;
const fingerprint = (e: LedgerEntry): string => JSON.stringify([e.target, e.windows, e.overridden]);
