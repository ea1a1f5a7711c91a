// size: the Agent composes every part, starts and stops them in order, and is the link's host; the
// state in force (desired documents, the notAfter timer, the loop) is what those share.
import type { Config } from './config/config.js';
import type { Clock, TimerHandle } from './core/clock.js';
import type { Logger } from './core/log.js';
import type { DisplayState, EpochMs, MediaRef } from './core/types.js';
import type { AppliedVersions, DesiredMessage, DesiredState } from './core/desired.js';
import { AlertController } from './alerts/controller.js';
import { DesiredApplier } from './desired/applier.js';
import { mpvFilterBrightness, PictureState } from './display/brightness.js';
import { DisplayController } from './display/controller.js';
import type { DisplayParts } from './display/parts.js';
import { Engine } from './engine/engine.js';
import type { Events } from './events/recorder.js';
import type { ClockSync } from './health/clock-sync.js';
import type { HealthSampler } from './health/sampler.js';
import type { Housekeeping } from './housekeeping/housekeeping.js';
import type { LinkHost, LogCommands } from './link/host.js';
import type { LogService } from './logs/service.js';
import type { Link } from './link/link.js';
import type { MediaCache } from './media/cache.js';
import { LoopSelection } from './media/loop.js';
import type { Clip } from './core/clip.js';
import type { Subscribe } from './core/listeners.js';
import type { Player } from './player/player.js';
import { effectiveState, nextNotAfter, type EffectiveState } from './schedule/desired.js';
import { Zone } from './schedule/zoned.js';
import type { HeartbeatFields } from './protocol/outbound.js';
import type { Plan } from './schedule/planner.js';
import type { Store } from './store/store.js';
import type { SystemdNotifier } from './systemd/notify.js';
import { Updater, type UpdaterCtx } from './update/updater.js';

export interface AgentContext {
  clock: Clock;
  store: Store;
  /** Where agent events are recorded (the same recorder the link wakes its outbox from). */
  events: Events;
  link: Link;
  player: Player;
  log: Logger;
  config: Config;
  media: MediaCache;
  /** A clip became playable (the cache's onVerified): the loop and the plan may use it now. */
  mediaVerified?: Subscribe<[string]>;
  health: HealthSampler;
  clockSync: ClockSync;
  housekeeping?: Housekeeping;
  notifier?: SystemdNotifier;
  /** WATCHDOG=1 period (half of systemd's WatchdogSec); none without a watchdog. */
  watchdogMs?: number;
  display?: () => DisplayState;
  /** §11: the CEC control and brightness driver the config picked (default: mpv's picture, no CEC). */
  displayParts?: DisplayParts;
  /** The `logs` and `log-level` commands (issue 13); none in agents built without a log ring. */
  logs?: LogService;
  agentVersion: string;
  bootedAt: EpochMs;
  /** Renders a §10 text alert full screen as a clip (alerts/text-card.ts); without it text alerts wait. */
  renderAlertText?: (text: string) => Promise<Clip>;
  /** Over-the-air updates (issue 13): what the updater needs beyond what the agent itself gives it. */
  update?: Omit<UpdaterCtx, 'version' | 'log' | 'events' | 'clock' | 'gap' | 'healthy'>;
  /** Observability hook passed to the engine (benchmarks). */
  onPlanned?: (p: Plan, reason: string) => void;
}

interface Component {
  name: string;
  stop(): Promise<void>;
}

/**
 * The daemon: composes store, media cache, health, player, engine and link, and answers the
 * link's questions (LinkHost). Start order is the dependency order; stop runs it backwards,
 * each step in its own try/catch so one failure never keeps the store from being closed.
 */
export class Agent implements LinkHost {
  readonly engine: Engine;
  /** Decides and stores the documents the link hands on (desired/). */
  readonly applier: DesiredApplier;
  readonly updater: Updater | undefined;
  /**
   * §11 power and brightness. The hook for §10 alerts: `display.wake('alert:{id}')` brings a
   * screen in standby on while the alert shows, `display.release('alert:{id}')` hands it back to
   * the schedule.
   */
  readonly display: DisplayController;
  /** §10 alerts: which one is live, its showings, what campaigns plan around. */
  readonly alerts: AlertController;
  private desired: EffectiveState;
  private started: Component[] = [];
  private watchdogTimer: TimerHandle | undefined;
  /** Fires at the next assignment `notAfter`, when what is in force changes without a message. */
  private endTimer: TimerHandle | undefined;
  private held: DesiredState = { assignments: [], overrides: [] };
  private readonly log: Logger;
  private readonly loop: LoopSelection;
  private loopSet: Clip[] | undefined;
  /** The live alert the display is held on for (§10 wakes a screen in standby, §11). */
  private wokenFor: string | undefined;

  constructor(private readonly ctx: AgentContext) {
    this.log = ctx.log.child({ component: 'agent' });
    this.desired = effectiveState({ assignments: [], overrides: [] }, ctx.config.groups);
    this.loop = new LoopSelection((m) => this.resolve(m));
    const picture = ctx.displayParts?.picture ?? new PictureState(ctx.player);
    const cec = ctx.displayParts?.cec;
    this.display = new DisplayController({
      clock: ctx.clock,
      log: ctx.log.child({ component: 'display' }),
      zone: new Zone(ctx.config.timezone),
      schedule: () => this.desired.display,
      picture,
      brightness: ctx.displayParts?.brightness ?? mpvFilterBrightness(picture),
      ...(cec ? { cec } : {}),
      busy: () => ctx.player.busy(),
      events: ctx.events,
    });
    ctx.mediaVerified?.on(() => this.onMediaVerified());
    this.applier = new DesiredApplier({
      store: ctx.store,
      clock: ctx.clock,
      log: ctx.log.child({ component: 'desired' }),
      events: ctx.events,
      groups: ctx.config.groups,
      onChange: (state) => this.onDesiredChanged(state),
    });
    this.alerts = new AlertController({
      clock: ctx.clock,
      log: ctx.log.child({ component: 'alerts' }),
      events: ctx.events,
      groups: ctx.config.groups,
      resolveMedia: (m) => this.resolve(m),
      durationOf: (sha) => ctx.media.duration(sha),
      ...(ctx.renderAlertText ? { renderText: ctx.renderAlertText } : {}),
      onChange: (reason) => this.onAlertsChanged(reason),
    });
    this.engine = new Engine({
      clock: ctx.clock,
      store: ctx.store,
      player: ctx.player,
      log: ctx.log.child({ component: 'engine' }),
      deviceId: ctx.config.deviceId,
      timezone: ctx.config.timezone,
      desired: () => this.desired,
      alerts: this.alerts,
      resolve: (m) => this.alerts.resolve(m) ?? this.resolve(m),
      durationOf: (sha) => ctx.media.duration(sha),
      learnDuration: (sha, ms) => ctx.media.setDuration(sha, ms),
      display: ctx.display ?? (() => 'unknown'),
      clockSynced: () => ctx.clockSync.lastKnown(),
      events: ctx.events,
      powerOff: (at) => this.display.offPeriods(at),
      standby: () => this.display.standby(),
      onOutbox: () => ctx.link.notifyOutbox(),
      ...(ctx.onPlanned ? { onPlanned: ctx.onPlanned } : {}),
    });
    this.updater = ctx.update
      ? new Updater({
          ...ctx.update,
          version: ctx.agentVersion,
          clock: ctx.clock,
          log: ctx.log.child({ component: 'update' }),
          events: ctx.events,
          gap: () => this.engine.spotGap(ctx.clock.now()),
          // "Playing or idle by plan": mpv up (a spot or the loop on screen, or nothing to show).
          healthy: () => ctx.link.connected() && ctx.player.state().state !== 'down',
        })
      : undefined;
  }

  async start(): Promise<void> {
    const { store, media, health, player, link, notifier } = this.ctx;
    const logs = this.ctx.logs;
    // First on, last off: a debug level set from the NOC reverts when the agent stops.
    if (logs) await this.step('logs', () => logs.start(), () => logs.stop());
    await this.step('store', () => store.start(), () => store.stop());
    await this.reportReplacedStore();
    await this.step('desired', () => this.applier.start(), () => this.applier.stop());
    this.inForce(this.applier.current());
    this.alerts.update(this.applier.current());
    const hk = this.ctx.housekeeping;
    if (hk) await this.step('housekeeping', () => hk.start(), () => hk.stop());
    await this.step('media', () => media.start(), () => media.stop());
    media.want(this.neededMedia());
    await this.step('health', () => health.start(), () => health.stop());
    void this.ctx.clockSync.synced().catch(() => undefined);
    // Before the player: a restart inside a standby period starts mpv already black.
    await this.step('display', () => this.display.start(), () => this.display.stop());
    await this.step('player', () => player.start(), () => player.stop());
    // After the player, before the engine: a live alert's loop is the first thing on screen.
    this.alerts.start();
    this.started.push({ name: 'alerts', stop: async () => this.alerts.stop() });
    this.updateLoop();
    await this.step(
      'engine',
      () => this.engine.start(),
      async () => {
        await this.engine.stop();
      },
    );
    link.attach(this);
    await this.step('link', () => link.start(), () => link.stop());
    const up = this.updater;
    if (up) await this.step('update', () => up.start(), () => up.stop());
    await notifier?.ready();
    this.armWatchdog();
    this.log.info({ deviceId: this.ctx.config.deviceId, campaigns: this.desired.campaigns.length }, 'agent started');
  }

  async stop(): Promise<void> {
    this.watchdogTimer?.cancel();
    this.endTimer?.cancel();
    await this.ctx.notifier?.stopping().catch(() => undefined);
    for (const c of [...this.started].reverse()) {
      try {
        await c.stop();
        // The player ends a spot in progress as interrupted; record it before the store closes.
        if (c.name === 'player') await this.engine.whenIdle();
      } catch (e) {
        this.log.error({ err: e, component: c.name }, 'stop failed');
      }
    }
    this.started = [];
    this.ctx.notifier?.close();
    this.log.info('agent stopped');
  }

  private async step(name: string, start: () => Promise<void>, stop: () => Promise<void>): Promise<void> {
    await start();
    this.started.push({ name, stop });
  }

  /**
   * A store found unusable (moved aside) or missing was replaced by a fresh one: say so. The
   * fresh store knows no plays, so today's counts start at zero and the day's plays are played
   * again; the new storeId keeps every eventId unique.
   */
  private async reportReplacedStore(): Promise<void> {
    const r = this.ctx.store.replacement();
    if (!r) return;
    this.log.warn({ ...r, storeId: this.ctx.store.storeId() }, 'store replaced by a fresh one');
    await this.ctx.events.record('store-replaced', {
      ...r,
      storeId: this.ctx.store.storeId(),
      countsReset: true,
      note: "a fresh store cannot know the plays of the old one: today's counts start at zero",
    });
  }

  /** A media file became playable: the loop and the plan may use it now. */
  onMediaVerified(): void {
    this.updateLoop();
    // A live alert whose media just arrived takes the screen now, not at the next plan.
    if (this.alerts.live()) this.engine.alertsChanged('alert media verified');
    else this.engine.replan('media verified');
  }

  /** An alert started, ended or became playable: its loop first, then the engine cuts or plans. */
  private onAlertsChanged(reason: string): void {
    this.holdDisplayForAlert();
    this.ctx.media.want(this.neededMedia());
    this.updateLoop();
    this.engine.alertsChanged(reason);
  }

  /**
   * A live alert wakes a screen in standby (§10 preempts everything, §11 standby included) and
   * holds it on until that alert leaves the screen; the schedule then takes over again.
   */
  private holdDisplayForAlert(): void {
    const live = this.alerts.live()?.campaignId;
    if (live === this.wokenFor) return;
    const was = this.wokenFor;
    this.wokenFor = live;
    const d = this.display;
    void (async () => {
      if (live) await d.wake(live);
      if (was) await d.release(was);
    })().catch((e: unknown) => this.log.warn({ err: (e as Error).message }, 'display hold for an alert failed'));
  }

  /** A document was stored: the state the store wrote is in force now, and the NOC hears of it. */
  private async onDesiredChanged(state: DesiredState): Promise<void> {
    this.inForce(state);
    // The alerts re-plan (and cut a spot) themselves; the other documents re-plan below.
    this.alerts.update(state);
    this.ctx.media.want(this.neededMedia());
    this.updateLoop();
    this.engine.replan('desired state changed');
    await this.ctx.link.publishStatus();
  }

  /**
   * What is in force now: the documents held, less assignments past their notAfter (issue 10
   * item 4), and a timer for the next notAfter to re-plan without them. The wait is capped at an
   * hour so that a stepped wall clock is caught up with soon.
   */
  private inForce(state: DesiredState): void {
    const now = this.ctx.clock.now();
    this.held = state;
    this.desired = effectiveState(state, this.ctx.config.groups, now);
    void this.display.refresh('schedule');
    this.endTimer?.cancel();
    this.endTimer = undefined;
    const next = nextNotAfter(state, now);
    if (next === undefined) return;
    this.endTimer = this.ctx.clock.setTimer(Math.min(next - now + 50, 3_600_000), () => {
      this.endTimer = undefined;
      const before = this.desired.campaigns.length;
      this.inForce(this.held);
      if (this.desired.campaigns.length === before && this.ctx.clock.now() < next) return;
      this.log.info({ campaigns: this.desired.campaigns.length }, 'an assignment reached its notAfter: re-planning without it');
      this.ctx.media.want(this.neededMedia());
      this.updateLoop();
      this.engine.replan('assignment notAfter');
    });
  }

  // --- LinkHost

  offerDesired(m: DesiredMessage): Promise<unknown> {
    return this.applier.offer(m);
  }

  applied(): AppliedVersions {
    return this.applier.applied();
  }

  async heartbeatFields(): Promise<HeartbeatFields> {
    const [h, compliance] = await Promise.all([this.ctx.health.sample(), this.engine.compliance()]);
    const ps = this.ctx.player.state();
    const sh = this.ctx.store.health();
    return {
      storeId: this.ctx.store.storeId(),
      // Not queued: the NOC sees a store that cannot write while the outbox cannot tell it.
      store: { state: sh.state, pending: sh.pending, ...(sh.lastError ? { lastError: sh.lastError } : {}) },
      cpuTempC: h.cpuTempC,
      load1: h.load1,
      memUsedPct: h.memUsedPct,
      diskFreeMB: h.diskFreeMB,
      ...(h.throttled ? { throttled: h.throttled } : {}),
      player: { state: ps.state, campaignId: ps.campaignId ?? null, url: ps.url ?? null, ...(ps.hwdec ? { hwdec: ps.hwdec } : {}) },
      clockSynced: this.ctx.clockSync.lastKnown(),
      display: { ...this.display.state(), hdmi: this.ctx.display?.() ?? 'unknown' },
      compliance,
      ...(this.updater?.info() ?? { agentVersion: this.ctx.agentVersion }),
      groups: this.ctx.config.groups,
    };
  }

  async playNow(campaignId: string): Promise<unknown> {
    // §10: nothing plays over an alert; the operator asks again once it ended.
    const live = this.alerts.live();
    if (live) throw new Error(`alert ${live.doc.id} is on screen until ${live.doc.expiresAt}: play-now refused`);
    return this.engine.playNow(campaignId);
  }

  get logCommands(): LogCommands | undefined {
    return this.ctx.logs;
  }

  screenshot(): Promise<Buffer> {
    return this.ctx.player.screenshot();
  }

  async restartPlayer(): Promise<void> {
    await this.ctx.player.restart('command');
  }

  async update(args: Record<string, unknown>): Promise<unknown> {
    if (!this.updater) throw new Error('updates are not set up on this agent');
    return this.updater.accept(args);
  }

  async report(date: string): Promise<unknown> {
    return { date, compliance: await this.engine.compliance(date) };
  }

  async status(): Promise<Record<string, unknown>> {
    const now = this.ctx.clock.now();
    return {
      deviceId: this.ctx.config.deviceId,
      storeId: this.ctx.store.storeId(),
      store: this.ctx.store.health(),
      agentVersion: this.ctx.agentVersion,
      ...(this.updater ? { update: this.updater.info().update } : {}),
      bootedAt: new Date(this.ctx.bootedAt).toISOString(),
      uptimeSec: Math.round((now - this.ctx.bootedAt) / 1000),
      applied: this.applier.applied(),
      campaigns: this.desired.campaigns.map((c) => c.id),
      player: this.ctx.player.state(),
      display: this.display.state(),
      linkConnected: this.ctx.link.connected(),
      backlog: await this.ctx.store.outboxCount(),
      media: this.ctx.media.status(),
      compliance: await this.engine.compliance(),
    };
  }

  // --- internals

  private resolve(m: MediaRef): Clip | undefined {
    return this.ctx.media.resolve(m);
  }

  /** The plan's media, the new loop's, and the old loop's while it is still on screen. */
  private neededMedia(): MediaRef[] {
    return [...this.desired.campaigns.map((c) => c.media), ...this.desired.loop, ...this.loop.onScreen(), ...this.alerts.media()];
  }

  /** Hands the player the loop to show (the old one until the new one is verified, see LoopSelection). */
  private updateLoop(): void {
    const before = this.loop.onScreen();
    const house = this.loop.clips(this.desired.loop);
    // The new loop took over: the old one's files may be evicted now.
    if (this.loop.onScreen() !== before) this.ctx.media.want(this.neededMedia());
    // A looping alert is the loop while it lasts: between its showings the screen never shows house content.
    const clips = this.alerts.loopClips() ?? house;
    // An unchanged loop is not set again: that would restart it from its first clip at every verified file.
    if (this.loopSet && sameClips(this.loopSet, clips)) return;
    this.loopSet = clips;
    this.ctx.player.setLoop(clips);
  }

  /** WATCHDOG=1 only while the store answers: a wedged sqlite or event loop gets us restarted. */
  private armWatchdog(): void {
    const n = this.ctx.notifier;
    const every = this.ctx.watchdogMs;
    if (!n || !every) return;
    const beat = (): void => {
      this.watchdogTimer = this.ctx.clock.setTimer(every, () => {
        void this.ctx.store
          .outboxCount()
          .then(() => n.watchdog())
          .catch((err: unknown) => this.log.error({ err }, 'health check failed; withholding the watchdog'))
          .finally(beat);
      });
    };
    beat();
  }
}

function sameClips(a: readonly Clip[], b: readonly Clip[]): boolean {
  return a.length === b.length && a.every((c, i) => c.path === b[i]!.path && c.sha256 === b[i]!.sha256);
}
