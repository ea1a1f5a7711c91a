// One virtual screen: the agent's own store (a real SQLite file), event recorder, desired-state
// applier, engine and MQTT link, with the simulated player in place of mpv. What the agent's
// daemon adds around these (media cache, health probes, clock sync, systemd) reads hardware a
// virtual screen does not have, so the LinkHost answers here are the Agent's minus those parts.
import type { Config } from '../../agent/config/config.js';
import type { Clock } from '../../agent/core/clock.js';
import type { AppliedVersions, DesiredMessage } from '../../agent/core/desired.js';
import type { Logger } from '../../agent/core/log.js';
import type { Assignment, EpochMs, LocalDate, PlayEvent } from '../../agent/core/types.js';
import { DesiredApplier } from '../../agent/desired/applier.js';
import { Engine } from '../../agent/engine/engine.js';
import { EventRecorder } from '../../agent/events/recorder.js';
import type { LinkHost } from '../../agent/link/host.js';
import { MqttLink } from '../../agent/link/link.js';
import { SimulatedPlayer } from '../../agent/player/simulated.js';
import type { HeartbeatFields } from '../../agent/protocol/outbound.js';
import { effectiveState, type EffectiveState } from '../../agent/schedule/desired.js';
import { SqliteStore, type SqliteStoreContext } from '../../agent/store/sqlite-store.js';

/** The store as the agent's, noting the eventId of every play event it makes (the simulator's own count). */
class CountingStore extends SqliteStore {
  readonly made: string[] = [];

  constructor(ctx: SqliteStoreContext) {
    super(ctx);
  }

  override async recordPlayEnd(...a: Parameters<SqliteStore['recordPlayEnd']>): Promise<PlayEvent> {
    const e = await super.recordPlayEnd(...a);
    this.made.push(e.eventId);
    return e;
  }

  override async closeOpenPlays(...a: Parameters<SqliteStore['closeOpenPlays']>): Promise<PlayEvent[]> {
    const es = await super.closeOpenPlays(...a);
    for (const e of es) this.made.push(e.eventId);
    return es;
  }
}

export interface ScreenContext {
  config: Config;
  clock: Clock;
  log: Logger;
  storeFile: string;
  assignment: Assignment;
  agentVersion: string;
}

export interface ScreenTally {
  deviceId: string;
  /** eventIds of every play event the engine recorded. */
  made: string[];
  /** eventIds still in the outbox at the end (not acknowledged by the broker). */
  unsent: string[];
  heartbeats: number;
}

export class VirtualScreen implements LinkHost {
  readonly store: CountingStore;
  readonly link: MqttLink;
  readonly engine: Engine;
  private readonly player: SimulatedPlayer;
  private readonly applier: DesiredApplier;
  private desired: EffectiveState;
  private heartbeats = 0;
  private readonly bootedAt: EpochMs;

  constructor(private readonly ctx: ScreenContext) {
    const { config, clock, log } = ctx;
    this.bootedAt = clock.now();
    this.store = new CountingStore({ file: ctx.storeFile, log, clock });
    const events = new EventRecorder({ store: this.store, clock, log });
    this.desired = effectiveState({ assignments: [], overrides: [] }, config.groups);
    this.applier = new DesiredApplier({
      store: this.store, clock, log, events, groups: config.groups,
      onChange: async (state) => {
        this.desired = effectiveState(state, config.groups, clock.now());
        this.engine.replan('desired state changed');
        await this.link.publishStatus();
      },
    });
    this.player = new SimulatedPlayer({ clock });
    this.link = new MqttLink({ config, store: this.store, events, clock, log, agentVersion: ctx.agentVersion, bootedAt: this.bootedAt });
    this.engine = new Engine({
      clock, store: this.store, player: this.player, log,
      deviceId: config.deviceId,
      timezone: config.timezone,
      desired: () => this.desired,
      // No files: the simulated player only needs a clip's length, which the assignment declares.
      resolve: (m) => ({ path: m.url, sha256: m.sha256, ...(m.durationMs !== undefined ? { durationMs: m.durationMs } : {}) }),
      display: () => 'connected',
      clockSynced: () => true,
      events,
      onOutbox: () => this.link.notifyOutbox(),
    });
  }

  get deviceId(): string {
    return this.ctx.config.deviceId;
  }

  /** The assignment is stored as the agent stores one it received, before the applier loads the state in force. */
  async start(): Promise<void> {
    await this.store.start();
    await this.store.applyIfNewer('device', { kind: 'assignment', doc: this.ctx.assignment }, this.ctx.clock.now());
    await this.applier.start();
    this.desired = effectiveState(this.applier.current(), this.ctx.config.groups, this.ctx.clock.now());
    await this.player.start();
    await this.engine.start();
    this.link.attach(this);
    await this.link.start();
  }

  /**
   * Stops playing (a spot on screen ends `interrupted`, as on a clean agent stop), then gives the
   * outbox up to `drainMs` to deliver every play before the link and the store close.
   */
  async stop(drainMs: number): Promise<ScreenTally> {
    await this.engine.stop();
    await this.player.stop();
    await this.engine.whenIdle();
    const until = Date.now() + drainMs;
    while (Date.now() < until && ((await this.store.outboxCount()) > 0 || this.store.health().pending > 0)) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await this.link.stop();
    await this.applier.stop();
    const unsent = (await this.store.outboxPeek(1_000_000, undefined, 'play')).map((r) => (JSON.parse(r.payload) as { eventId: string }).eventId);
    await this.store.stop();
    return { deviceId: this.deviceId, made: this.store.made, unsent, heartbeats: this.heartbeats };
  }

  // --- LinkHost

  offerDesired(m: DesiredMessage): Promise<unknown> {
    return this.applier.offer(m);
  }

  applied(): AppliedVersions {
    return this.applier.applied();
  }

  async heartbeatFields(): Promise<HeartbeatFields> {
    this.heartbeats++;
    const ps = this.player.state();
    const sh = this.store.health();
    return {
      storeId: this.store.storeId(),
      store: { state: sh.state, pending: sh.pending },
      player: { state: ps.state, campaignId: ps.campaignId ?? null, url: ps.url ?? null },
      clockSynced: true,
      display: 'connected',
      compliance: await this.engine.compliance(),
    };
  }

  async playNow(campaignId: string): Promise<unknown> {
    return this.engine.playNow(campaignId);
  }

  screenshot(): Promise<Buffer> {
    return this.player.screenshot();
  }

  restartPlayer(): Promise<void> {
    return this.player.restart('command');
  }

  /** A virtual screen has no release to switch: the command is refused, as on an agent built without the updater. */
  async update(): Promise<unknown> {
    throw new Error('update: a simulated screen does not update');
  }

  async report(date: LocalDate): Promise<unknown> {
    return { date, compliance: await this.engine.compliance(date) };
  }

  async status(): Promise<Record<string, unknown>> {
    return {
      deviceId: this.deviceId,
      storeId: this.store.storeId(),
      simulated: true,
      applied: this.applier.applied(),
      player: this.player.state(),
      linkConnected: this.link.connected(),
      backlog: await this.store.outboxCount(),
      compliance: await this.engine.compliance(),
    };
  }
}
