// `signage-fleet simulate-fleet`: N virtual screens in one process (docs/fleet.md#fleet-simulator).
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { parseConfig } from '../../agent/config/config.js';
import type { Clock } from '../../agent/core/clock.js';
import type { Logger } from '../../agent/core/log.js';
import type { Assignment, EpochMs } from '../../agent/core/types.js';
import { Zone } from '../../agent/schedule/zoned.js';
import { VirtualScreen, type ScreenTally } from './screen.js';

export interface FleetSimOptions {
  devices: number;
  brokerUrl: string;
  /** Where the per-screen SQLite stores go (one file each). */
  dataDir: string;
  heartbeatSec: number;
  playsPerHour: number;
  /** How long the screens play; their windows are sized to it. */
  durationMs: number;
  spotSec: number;
  prefix: string;
  /** Device ids are `{idPrefix}{0001..N}`. */
  idPrefix: string;
  timezone: string;
  /** 0: the broker forgets a virtual screen as it leaves (no sessions left behind on a real broker). */
  sessionExpirySec: number;
  /** Screens started at once; the next batch waits for their CONNECTs. */
  batch: number;
  clock: Clock;
  log: Logger;
  agentVersion: string;
}

export interface FleetSimResult {
  devices: number;
  /** Play events the engines recorded. */
  plays: number;
  /** Of those, acknowledged by the broker (PUBACK) before the end. */
  playsSent: number;
  /** Still in an outbox at the end. */
  playsUnsent: number;
  heartbeats: number;
  /** eventIds acknowledged by the broker, per device. */
  sent: Map<string, string[]>;
  windowClipped: boolean;
}

const hms = (s: number): string => [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60].map((n) => String(n).padStart(2, '0')).join(':');

/**
 * A screen's assignment: one campaign whose window opens when the run starts and lasts the run
 * plus one play interval, with timesPerDay so that the planner's even grid over it is
 * `playsPerHour`. Screen i's window opens i/N of an interval later, so the fleet's plays are
 * spread evenly instead of all screens playing on the same instant. The window cannot pass the
 * local midnight (`clipped`): pick a --timezone where the run fits in one day.
 */
export function simAssignment(o: Pick<FleetSimOptions, 'playsPerHour' | 'durationMs' | 'spotSec' | 'timezone' | 'devices'>, i: number, now: EpochMs): { doc: Assignment; clipped: boolean } {
  const zone = new Zone(o.timezone);
  const day = zone.localDateOf(now);
  const stepSec = 3600 / o.playsPerHour;
  const nowSec = Math.ceil((now - zone.dayBounds(day).start) / 1000);
  const start = Math.min(86_399, nowSec + 2 + Math.floor((i * stepSec) / o.devices));
  const wanted = start + Math.ceil(o.durationMs / 1000 + stepSec);
  const end = Math.min(86_400, wanted);
  const times = Math.max(1, Math.round(((end - start) / 3600) * o.playsPerHour));
  return {
    clipped: end < wanted,
    doc: {
      version: 1,
      campaigns: [{
        id: 'sim-spot',
        media: { url: 'https://example.invalid/sim-spot.mp4', sha256: 'e'.repeat(64), durationMs: o.spotSec * 1000 },
        timesPerDay: times,
        windows: [`${hms(start)}-${hms(end)}`],
        startDate: day,
        endDate: day,
      }],
    },
  };
}

export class FleetSimulator {
  readonly screens: VirtualScreen[] = [];
  private clipped = false;

  constructor(private readonly o: FleetSimOptions) {}

  async start(): Promise<void> {
    mkdirSync(this.o.dataDir, { recursive: true });
    const now = this.o.clock.now();
    const width = String(this.o.devices).length;
    for (let i = 0; i < this.o.devices; i++) {
      const deviceId = `${this.o.idPrefix}${String(i + 1).padStart(Math.max(4, width), '0')}`;
      const config = parseConfig({
        deviceId, timezone: this.o.timezone, heartbeatSec: this.o.heartbeatSec, dataDir: path.join(this.o.dataDir, deviceId),
        mqtt: { url: this.o.brokerUrl, topicPrefix: this.o.prefix, sessionExpirySec: this.o.sessionExpirySec },
      }, path.join(this.o.dataDir, 'agent.json'));
      const a = simAssignment(this.o, i, now);
      this.clipped ||= a.clipped;
      this.screens.push(new VirtualScreen({
        config, clock: this.o.clock, log: this.o.log.child({ deviceId }), assignment: a.doc,
        storeFile: path.join(this.o.dataDir, `${deviceId}.db`), agentVersion: this.o.agentVersion,
      }));
    }
    if (this.clipped) this.o.log.warn({ timezone: this.o.timezone }, 'the run passes local midnight: screens stop playing at 24:00 (choose another --timezone)');
    for (let i = 0; i < this.screens.length; i += this.o.batch) {
      await Promise.all(this.screens.slice(i, i + this.o.batch).map((s) => s.start()));
    }
    this.o.log.info({ devices: this.screens.length }, 'virtual screens started');
  }

  /** Every screen stops playing and delivers what its outbox holds (up to `drainMs`), then leaves. */
  async stop(drainMs = 30_000): Promise<FleetSimResult> {
    const tallies: ScreenTally[] = [];
    for (let i = 0; i < this.screens.length; i += this.o.batch) {
      tallies.push(...(await Promise.all(this.screens.slice(i, i + this.o.batch).map((s) => s.stop(drainMs)))));
    }
    const sent = new Map<string, string[]>();
    let plays = 0;
    let unsent = 0;
    let heartbeats = 0;
    for (const t of tallies) {
      const left = new Set(t.unsent);
      sent.set(t.deviceId, t.made.filter((id) => !left.has(id)));
      plays += t.made.length;
      unsent += left.size;
      heartbeats += t.heartbeats;
    }
    return { devices: tallies.length, plays, playsSent: plays - unsent, playsUnsent: unsent, heartbeats, sent, windowClipped: this.clipped };
  }
}
