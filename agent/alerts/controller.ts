import type { Clip } from '../core/clip.js';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { DesiredState } from '../core/desired.js';
import type { Logger } from '../core/log.js';
import type { Campaign, EpochMs, MediaRef } from '../core/types.js';
import type { Events } from '../events/recorder.js';
import type { WindowSpan } from '../schedule/windows.js';
import { alertsInForce, blockedSpans, liveAlert, nextChangeAt, showingDueAt, type AlertInForce } from './rules.js';

// PROTOCOL §10 on one screen: the alerts in force, the one live now, its showings, and the
// instants at which that changes. It decides nothing about spots: the engine asks it (AlertHook,
// engine/alert-hook.ts) what is due and what to plan around, and is told when that changed.

/** A showing whose length is not known yet is planned around for this long. */
const DEFAULT_SHOW_MS = 30_000;
/** Wake at least this often while alerts are in force (a stepped wall clock is caught up with soon). */
const MAX_SLEEP_MS = 60_000;

export interface AlertControllerContext {
  clock: Clock;
  log: Logger;
  events: Events;
  /** The configured groups (an alert on a group topic we no longer listen to is not in force). */
  groups: readonly string[];
  /** A verified clip of the alert's media from the cache, or undefined while it is not. */
  resolveMedia(m: MediaRef): Clip | undefined;
  /** Learned clip length by sha256 (the cache's). */
  durationOf?(sha256: string): number | undefined;
  /** Renders a text alert full screen as a clip (text-card.ts). */
  renderText?(text: string): Promise<Clip>;
  /** What the screen must do changed (an alert started, ended, became playable, or its media is wanted). */
  onChange(reason: string): void;
}

export class AlertController {
  private state: DesiredState = { assignments: [], overrides: [] };
  private alerts: AlertInForce[] = [];
  private timer: TimerHandle | undefined;
  /** Rendered text cards by text; a render in progress is a promise. */
  private readonly cards = new Map<string, Clip | Promise<void>>();
  /** When each alert's last showing started (repeatEverySec). */
  private readonly lastShown = new Map<string, EpochMs>();
  /** The alert the last `alert` event said was on screen. */
  private announced: AlertInForce | undefined;
  private stopped = true;

  constructor(private readonly ctx: AlertControllerContext) {}

  start(): void {
    this.stopped = false;
    this.refresh('start');
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
  }

  /** The desired state changed (an alert stored or cleared). */
  update(state: DesiredState): void {
    this.state = state;
    this.refresh('alert changed');
  }

  /** Media of every alert in force, pre-staged ones included: fetched and verified at once. */
  media(): MediaRef[] {
    return this.alerts.flatMap((a) => (a.doc.media ? [{ url: a.doc.media.url, sha256: a.doc.media.sha256 }] : []));
  }

  /** The alert on screen now (its media may still be on its way). */
  live(now = this.ctx.clock.now()): AlertInForce | undefined {
    return liveAlert(this.alerts, now);
  }

  /** The clip of an alert, or undefined while it is not playable (media not verified, text not rendered). */
  clipOf(a: AlertInForce): Clip | undefined {
    if (a.doc.media) return this.ctx.resolveMedia({ url: a.doc.media.url, sha256: a.doc.media.sha256 });
    const card = a.doc.text === undefined ? undefined : this.cards.get(a.doc.text);
    return card && !(card instanceof Promise) ? card : undefined;
  }

  /** A rendered text card by its media ref (the engine resolves an alert's pseudo-campaign through this first). */
  resolve(m: MediaRef): Clip | undefined {
    for (const c of this.cards.values()) if (!(c instanceof Promise) && c.sha256 === m.sha256) return c;
    return undefined;
  }

  /** An alert's showing as a campaign the engine can play and record (`alert:{id}`). */
  campaign(campaignId: string): Campaign | undefined {
    const a = this.alerts.find((x) => x.campaignId === campaignId);
    const clip = a && this.clipOf(a);
    if (!a || !clip) return undefined;
    return { id: campaignId, media: { url: `file://${clip.path}`, sha256: clip.sha256, ...(clip.durationMs ? { durationMs: clip.durationMs } : {}) }, timesPerDay: 0, priority: 1000 };
  }

  /** The live alert's showing if one is due at `now` and playable: the engine starts it. */
  due(now: EpochMs): Campaign | undefined {
    const a = this.live(now);
    if (!a || showingDueAt(a, this.lastShown.get(a.campaignId)) > now) return undefined;
    return this.campaign(a.campaignId);
  }

  /** A showing of `campaignId` went into the player at `at` (the repeat grid counts from it). */
  shown(campaignId: string, at: EpochMs): void {
    this.lastShown.set(campaignId, at);
  }

  /** The running spot must give way now: a live alert wants the screen and it is not that alert's showing. */
  preempts(runningCampaignId: string, now: EpochMs): boolean {
    const a = this.live(now);
    if (runningCampaignId.startsWith('alert:')) return a?.campaignId !== runningCampaignId;
    return this.due(now) !== undefined;
  }

  /** A looping live alert's clip is the player's loop while it lasts (no house content between showings). */
  loopClips(now = this.ctx.clock.now()): Clip[] | undefined {
    const a = this.live(now);
    if (!a || a.repeatMs !== undefined) return undefined;
    const clip = this.clipOf(a);
    return clip ? [clip] : undefined;
  }

  /** The time campaigns plan around (PlanInput.blocked). */
  blocked(now: EpochMs): WindowSpan[] {
    return blockedSpans(this.alerts, now, (a) => this.showMs(a), (a) => this.lastShown.get(a.campaignId));
  }

  /** The next instant a showing falls due or the live alert changes. */
  nextAt(now: EpochMs): EpochMs | undefined {
    const change = nextChangeAt(this.alerts, now);
    const a = this.live(now);
    const show = a?.repeatMs !== undefined ? showingDueAt(a, this.lastShown.get(a.campaignId)) : undefined;
    const next = Math.min(change ?? Infinity, show !== undefined && show > now ? show : Infinity);
    return Number.isFinite(next) ? next : undefined;
  }

  private showMs(a: AlertInForce): number {
    const clip = this.clipOf(a);
    return (clip && (this.ctx.durationOf?.(clip.sha256) ?? clip.durationMs)) ?? DEFAULT_SHOW_MS;
  }

  /** Re-reads what is in force at `now`, renders text cards, announces a change, arms the next wake. */
  private refresh(reason: string): void {
    if (this.stopped) return;
    const now = this.ctx.clock.now();
    this.alerts = alertsInForce(this.state, this.ctx.groups, now);
    for (const id of [...this.lastShown.keys()]) if (!this.alerts.some((a) => a.campaignId === id)) this.lastShown.delete(id);
    for (const a of this.alerts) if (a.doc.text !== undefined) this.renderCard(a.doc.text);
    this.announce(now);
    this.arm(now);
    this.ctx.onChange(reason);
  }

  private renderCard(text: string): void {
    const render = this.ctx.renderText;
    if (!render || this.cards.has(text)) return;
    const started = this.ctx.clock.monotonic();
    const job = render(text).then(
      (clip) => {
        this.cards.set(text, clip);
        this.ctx.log.info({ ms: Math.round(this.ctx.clock.monotonic() - started), path: clip.path }, 'alert text rendered');
        this.refresh('alert text rendered');
      },
      (err: unknown) => {
        this.cards.delete(text);
        this.ctx.log.error({ err }, 'alert text could not be rendered');
        void this.ctx.events.record('media-failed', { url: 'alert:text', sha256: '', reason: `text card: ${String((err as Error)?.message ?? err).slice(0, 300)}` });
      },
    );
    this.cards.set(text, job);
  }

  /** An `alert` event whenever the alert on screen changes: the old one ended, the new one started. */
  private announce(now: EpochMs): void {
    const a = this.live(now);
    const was = this.announced;
    if (was?.campaignId === a?.campaignId && was?.version === a?.version) return;
    this.announced = a;
    const at = new Date(now).toISOString();
    if (was) {
      const still = this.alerts.find((x) => x.campaignId === was.campaignId);
      const why = !still ? (was.expiresAt <= now ? 'expired' : 'cleared') : still.version !== was.version ? 'replaced' : 'superseded';
      void this.ctx.events.record('alert', { id: was.doc.id, source: was.source, version: was.version, state: 'ended', reason: why, at });
    }
    if (a) {
      this.ctx.log.warn({ id: a.doc.id, source: a.source, expiresAt: a.doc.expiresAt }, 'alert on screen');
      void this.ctx.events.record('alert', { id: a.doc.id, source: a.source, version: a.version, state: 'started', startsAt: a.doc.startsAt, expiresAt: a.doc.expiresAt, at });
    }
  }

  private arm(now: EpochMs): void {
    this.timer?.cancel();
    this.timer = undefined;
    const next = this.nextAt(now);
    if (next === undefined && this.alerts.length === 0) return;
    const at = Math.min(next ?? Infinity, now + MAX_SLEEP_MS);
    this.timer = this.ctx.clock.setTimer(Math.max(0, at - now), () => {
      this.timer = undefined;
      this.refresh(next !== undefined && this.ctx.clock.now() >= next ? 'alert instant' : 'alert wake');
    });
  }
}
