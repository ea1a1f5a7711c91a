import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import type { Campaign, EpochMs } from '../core/types.js';
import type { Player } from '../player/player.js';
import type { WindowSpan } from '../schedule/windows.js';
import type { SpotRunner } from './spot-runner.js';

/**
 * What the engine asks of §10 alerts (AlertController in alerts/ answers). Its own small seam so
 * the engine's part of alerts stays a few lines: an alert's showing is played and recorded like a
 * spot of the pseudo-campaign `alert:{id}`; the planner plans campaigns around `blocked`.
 */
export interface AlertHook {
  /** The live alert's showing, if one is due at `now` and playable. */
  due(now: EpochMs): Campaign | undefined;
  /** A showing went into the player. */
  shown(campaignId: string, at: EpochMs): void;
  /** The pseudo-campaign of an alert in force (SpotRunner looks the spot's campaign up by id). */
  campaign(campaignId: string): Campaign | undefined;
  /** True when the spot of `campaignId` in the player must give way at once. */
  preempts(campaignId: string, now: EpochMs): boolean;
  /** Time no campaign may use (PlanInput.blocked). */
  blocked(now: EpochMs): WindowSpan[];
  /** The next instant a showing falls due or the live alert changes (the engine wakes then). */
  nextAt(now: EpochMs): EpochMs | undefined;
}

/**
 * A spot that must give way to a live alert is cut at once (its play is `interrupted`, as §8 has
 * it); its end starts the alert's showing. Spots queued by play-now are dropped: an alert
 * outranks them. True when it cut one.
 */
export function cutForAlert(alerts: AlertHook | undefined, spots: SpotRunner, ctx: { clock: Clock; log: Logger; player: Player }, reason: string): boolean {
  const cur = spots.underWay();
  if (!cur || !alerts?.preempts(cur.campaignId, ctx.clock.now())) return false;
  spots.clearQueue();
  ctx.log.info({ campaignId: cur.campaignId, reason }, 'alert: interrupting the spot on screen');
  ctx.player.interrupt?.(`alert: ${reason}`);
  return true;
}

/** Starts the live alert's showing if one is due and the player is free: true when it did. */
export function startDueAlert(alerts: AlertHook | undefined, spots: SpotRunner, now: EpochMs): boolean {
  const a = spots.busy() ? undefined : alerts?.due(now);
  if (!a || !alerts) return false;
  alerts.shown(a.id, now);
  spots.start({ campaignId: a.id, scheduledAt: now });
  return spots.busy();
}
