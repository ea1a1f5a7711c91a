import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import type { EpochMs, LocalDate } from '../core/types.js';
import type { EventDetails } from '../events/types.js';
import type { Events } from '../events/recorder.js';
import type { DisplaySchedule } from '../protocol/display-schema.js';
import type { DisplayPower } from '../protocol/outbound.js';
import type { WindowSpan } from '../schedule/windows.js';
import type { Zone } from '../schedule/zoned.js';
import type { BrightnessDriver, PictureControl } from './brightness.js';
import type { CecAnswer, CecControl } from './cec.js';
import { brightnessAt, offSpans, powerAt } from './schedule.js';

/** A TV needs seconds to come out of standby: it is woken over CEC this long before its power window. */
const CEC_WAKE_LEAD_MS = 60_000;
/** Re-check at least this often, so a stepped wall clock is caught up with. */
const MAX_SLEEP_MS = 3_600_000;
/** A spot is never cut: standby waits for it, checking this often. */
const SPOT_WAIT_MS = 1_000;

export interface DisplayControllerContext {
  clock: Clock;
  log: Logger;
  zone: Zone;
  /** The schedule in force (the agent's effective state). */
  schedule: () => DisplaySchedule | undefined;
  /** The player's picture: blank in standby. */
  picture: PictureControl;
  brightness: BrightnessDriver;
  /** Present when the box has a /dev/cec* node and `display.cec` is not `off`. */
  cec?: CecControl;
  /** A spot is in the player: standby waits until it ends. */
  busy: () => boolean;
  events: Events;
}

export interface DisplayNow {
  power: DisplayPower;
  brightnessPct: number | null;
}

/**
 * §11 on the real screen: at every boundary of the schedule (and at start, so a restart inside a
 * standby period comes up in standby) it sets the power (HDMI-CEC standby where the sink takes
 * it, and in any case a black, paused mpv) and the brightness (through the configured driver),
 * and records a `display` event for every change.
 *
 * Alerts (§10) call `wake(reason)` to bring the screen on whatever the schedule says, and
 * `release(reason)` when they are over; the schedule takes over again once no wake is held.
 */
export class DisplayController {
  private power: DisplayPower = 'unknown';
  private pct: number | null = null;
  private timer: TimerHandle | undefined;
  private running = false;
  private readonly wakes = new Set<string>();
  /** The sink was woken over CEC ahead of the window that opens at this instant. */
  private cecWokeFor: EpochMs | undefined;
  private via: 'cec' | 'black' = 'black';
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly ctx: DisplayControllerContext) {}

  async start(): Promise<void> {
    this.running = true;
    await this.refresh('schedule');
  }

  async stop(): Promise<void> {
    this.running = false;
    this.timer?.cancel();
    this.timer = undefined;
    await this.chain;
  }

  /** Resolves once the evaluations asked for so far are done (tests, on a virtual clock). */
  async settled(): Promise<void> {
    await this.chain;
  }

  /** Power and brightness now, for the heartbeat. */
  state(): DisplayNow {
    return { power: this.power, brightnessPct: this.pct };
  }

  /** In standby now (by schedule, no wake held): nothing may play. */
  standby(): boolean {
    return this.power === 'standby';
  }

  /** The standby instants of the day of `at` by schedule: the engine cuts them out of every window. */
  offPeriods(at: EpochMs): WindowSpan[] {
    return offSpans(this.ctx.schedule(), this.ctx.zone, this.ctx.zone.localDateOf(at));
  }

  /** The standby instants of a local day (plan, simulate). */
  offPeriodsOf(day: LocalDate): WindowSpan[] {
    return offSpans(this.ctx.schedule(), this.ctx.zone, day);
  }

  /** Holds the screen on (an alert) until `release` with the same reason. */
  wake(reason: string): Promise<void> {
    this.wakes.add(reason);
    return this.refresh('alert');
  }

  release(reason: string): Promise<void> {
    this.wakes.delete(reason);
    return this.refresh('schedule');
  }

  /** Applies the schedule now (a new schedule, a boundary); one evaluation at a time. */
  refresh(reason: 'schedule' | 'alert'): Promise<void> {
    const next = this.chain.then(() => this.evaluate(reason)).catch((err: unknown) => this.ctx.log.error({ err }, 'display evaluation failed'));
    this.chain = next;
    return next;
  }

  private async evaluate(reason: 'schedule' | 'alert'): Promise<void> {
    if (!this.running) return;
    const { clock, zone } = this.ctx;
    const now = clock.now();
    const sched = this.ctx.schedule();
    this.ctx.log.debug({ asked: reason }, 'display evaluation');
    const p = powerAt(sched, zone, now);
    const b = brightnessAt(sched, zone, now);
    const wantOn = p.on || this.wakes.size > 0;
    let wakeAt = Math.min(p.until ?? Infinity, b.until ?? Infinity, now + MAX_SLEEP_MS);
    const detail: Partial<EventDetails['display']> = {};
    let changed = false;

    if (b.pct !== this.pct) {
      try {
        await this.ctx.brightness.set(b.pct);
        this.pct = b.pct;
        changed = true;
      } catch (err) {
        this.ctx.log.error({ err, driver: this.ctx.brightness.name, pct: b.pct }, 'brightness could not be set; retrying in a minute');
        wakeAt = Math.min(wakeAt, now + 60_000);
      }
    }

    const first = this.power === 'unknown';
    const isOn = this.power === 'on';
    if (wantOn !== isOn || this.power === 'unknown') {
      if (!wantOn && this.ctx.busy()) {
        // A spot that started inside the window plays to its end; standby follows it.
        wakeAt = Math.min(wakeAt, now + SPOT_WAIT_MS);
      } else {
        Object.assign(detail, await this.setPower(wantOn, now));
        changed = true;
      }
    }
    if (this.power === 'standby' && p.until !== undefined && this.ctx.cec && this.cecWokeFor !== p.until) {
      // Standby until p.until: wake the sink ahead of the window so the picture is there at its instant.
      const lead = p.until - CEC_WAKE_LEAD_MS;
      if (now >= lead) {
        this.cecWokeFor = p.until;
        const a = await this.ctx.cec.wake();
        this.ctx.log.info({ cec: a }, 'sink woken ahead of the power window');
      } else wakeAt = Math.min(wakeAt, lead);
    }

    // Coming up on at full brightness with no schedule is no change anyone needs to hear of.
    const quietStart = first && sched === undefined && this.power === 'on' && this.pct === 100;
    if (changed && !quietStart) {
      const why = detail.reason ?? (this.wakes.size > 0 && wantOn && !p.on ? 'alert' : 'schedule');
      await this.ctx.events.record('display', {
        power: this.power,
        brightnessPct: this.pct,
        reason: why,
        ...(detail.via ? { via: detail.via } : {}),
        ...(detail.cec ? { cec: detail.cec } : {}),
      });
    }
    this.arm(wakeAt);
  }

  /** Standby: CEC where the sink takes it, and a black paused picture always; on: the reverse. */
  private async setPower(on: boolean, now: EpochMs): Promise<Partial<EventDetails['display']>> {
    const out: Partial<EventDetails['display']> = {};
    let answer: CecAnswer | undefined;
    if (this.ctx.cec) {
      // Woken ahead of this window already (the lead): not again.
      const early = this.cecWokeFor !== undefined && this.cecWokeFor <= now;
      answer = on ? (early ? undefined : await this.ctx.cec.wake()) : await this.ctx.cec.standby();
      if (answer) {
        out.cec = answer.said;
        if (!answer.ok) out.reason = 'cec-failed';
        this.via = answer.ok ? 'cec' : 'black';
      }
    }
    this.cecWokeFor = undefined;
    await this.ctx.picture.update({ blank: !on });
    this.power = on ? 'on' : 'standby';
    if (!on) out.via = this.via;
    this.ctx.log.info({ power: this.power, cec: answer }, on ? 'display on' : 'display to standby');
    return out;
  }

  private arm(at: number): void {
    this.timer?.cancel();
    this.timer = undefined;
    if (!this.running || !Number.isFinite(at)) return;
    this.timer = this.ctx.clock.setTimer(Math.max(0, at - this.ctx.clock.now()), () => void this.refresh('schedule'));
  }
}
