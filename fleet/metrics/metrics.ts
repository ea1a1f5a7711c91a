import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { Archive } from '../archive/archive.js';
import type { IngestCounters } from '../ingest/ingest.js';
import { OUTCOMES, PlayTotals, takeSnapshot, THROTTLE_CONDITIONS, type ThrottleCondition, type Snapshot } from './snapshot.js';

// GET /metrics (docs/fleet.md#metrics-and-alerts): every fleet series is computed at scrape time
// from the archive, so any process that has the archive open serves the same fleet view and a
// restart loses nothing. One snapshot per scrape feeds every collect() callback. A private
// Registry: no module-level state, and two FleetMetrics in one process do not collide.

export interface FleetMetricsOptions {
  now?: () => number;
  /** A screen is up while its status is online and its last heartbeat is at most this old (default 120 s: four 30 s beats). */
  staleAfterSec?: number;
  /** `signage_device_output_suspect` counts `output-suspect` events this far back (default 3600 s). */
  suspectWindowSec?: number;
  /** This process's ingest, for the `signage_ingest_*` counters (omitted: not exported). */
  ingest?: { readonly counters: IngestCounters };
  batcher?: { readonly totals: { batches: number; rows: number; plays: number; duplicates: number; dropped: number; failures: number } };
}

type DeviceLabels = 'device';

const REASONS = ['not a telemetry topic', 'payload too large', 'empty payload', 'payload is not UTF-8', 'payload is not JSON', 'invalid play', 'invalid event', 'invalid heartbeat', 'invalid status', 'spoofed'];

/**
 * The ingest's reason keys as a closed set of label values: a key can hold text from the payload
 * (a bad eventId's head), and a label value per hostile message would flood Prometheus.
 */
export function reasonLabel(key: string): string {
  if (key.startsWith('eventId ')) return 'bad-event-id';
  return REASONS.includes(key) ? key.toLowerCase().replaceAll(' ', '-') : 'other';
}

export class FleetMetrics {
  readonly registry = new Registry();
  private readonly totals = new PlayTotals();
  private current: Promise<Snapshot> | undefined;
  private readonly now: () => number;

  constructor(private readonly archive: Archive, private readonly opts: FleetMetricsOptions = {}) {
    this.now = opts.now ?? Date.now;
    collectDefaultMetrics({ register: this.registry });
    // Gauges named *_total fail `promtool check metrics`; nodejs_active_{handles,requests,resources} by type say the same.
    for (const n of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(n);
    this.deviceMetrics();
    this.campaignMetrics();
    this.ingestMetrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text: one archive snapshot, then every collector reads it. */
  async render(): Promise<string> {
    this.current = this.load();
    try {
      return await this.registry.metrics();
    } finally {
      this.current = undefined;
    }
  }

  private load(): Promise<Snapshot> {
    const o = { now: this.now(), staleAfterSec: this.opts.staleAfterSec ?? 120, suspectWindowSec: this.opts.suspectWindowSec ?? 3600 };
    return this.archive.read((q) => takeSnapshot(q, o, this.totals));
  }

  private snapshot(): Promise<Snapshot> {
    return this.current ?? this.load();
  }

  /** A gauge whose series are all replaced from the snapshot on each scrape. */
  private gauge<L extends string>(name: string, help: string, labelNames: readonly L[], fill: (s: Snapshot, set: (labels: Record<L, string>, v: number) => void) => void): void {
    const self = this;
    new Gauge<L>({
      name, help, labelNames, registers: [this.registry],
      async collect() {
        const s = await self.snapshot();
        this.reset();
        fill(s, (labels, v) => this.set(labels as Partial<Record<L, string>>, v));
      },
    });
  }

  /** A counter mirrored from a total that only grows (the archive's, or this process's). */
  private counter<L extends string>(name: string, help: string, labelNames: readonly L[], fill: (s: Snapshot | undefined, inc: (labels: Record<L, string>, v: number) => void) => void, needsSnapshot = true): void {
    const self = this;
    new Counter<L>({
      name, help, labelNames, registers: [this.registry],
      async collect() {
        const s = needsSnapshot ? await self.snapshot() : undefined;
        this.reset();
        fill(s, (labels, v) => this.inc(labels as Partial<Record<L, string>>, v));
      },
    });
  }

  private deviceMetrics(): void {
    const d: readonly DeviceLabels[] = ['device'];
    const each = (pick: (x: Snapshot['devices'][number]) => number | undefined) => (s: Snapshot, set: (l: Record<DeviceLabels, string>, v: number) => void): void => {
      for (const x of s.devices) {
        const v = pick(x);
        if (v !== undefined) set({ device: x.id }, v);
      }
    };
    this.gauge('signage_device_up', 'Screen online: status online and a heartbeat within the stale limit (0 for a screen of the groups map never seen).', d, each((x) => Number(x.up)));
    this.gauge('signage_device_last_heartbeat_age_seconds', "Seconds since the last heartbeat's ts (the screen's clock).", d, each((x) => x.heartbeatAgeSec));
    this.gauge('signage_device_backlog', 'Events waiting in the screen outbox (last heartbeat).', d, each((x) => x.hb.backlog));
    this.gauge('signage_device_cpu_temp_celsius', 'CPU temperature (last heartbeat).', d, each((x) => x.hb.cpuTempC));
    // Base unit bytes (promtool's lint); the heartbeat's diskFreeMB is MiB, floored.
    this.gauge('signage_device_disk_free_bytes', "Free space on the agent's data partition (last heartbeat diskFreeMB x 1048576).", d, each((x) => (x.hb.diskFreeMB === undefined ? undefined : x.hb.diskFreeMB * 1_048_576)));
    this.gauge('signage_device_player_down', '1 when the last heartbeat says the player (mpv) is down: the agent is up, the screen dark.', d, each((x) => (x.hb.playerDown === undefined ? undefined : Number(x.hb.playerDown))));
    this.gauge('signage_device_standby', '1 when the last heartbeat says display.power is standby (PROTOCOL 11: standby by schedule).', d, each((x) => (x.heartbeatAgeSec === undefined ? undefined : Number(x.hb.power === 'standby'))));
    this.gauge('signage_device_output_suspect', 'output-suspect events (black or frozen frame during a spot) in the last window (suspectWindowSec).', d, each((x) => x.outputSuspect));
    this.gauge('signage_device_seq_missing', 'Play seqs missing in the archive (open seq gaps); falls when late plays fill a gap.', d, each((x) => x.seqMissing));
    const flags = (i: 0 | 1) => (s: Snapshot, set: (l: Record<'device' | 'condition', string>, v: number) => void): void => {
      for (const x of s.devices) for (const c of Object.keys(THROTTLE_CONDITIONS) as ThrottleCondition[]) if (x.hb.throttled) set({ device: x.id, condition: c }, Number(x.hb.throttled[c][i]));
    };
    this.gauge('signage_device_throttled', 'Raspberry Pi get_throttled, now: 1 while the condition holds (last heartbeat).', ['device', 'condition'], flags(0));
    this.gauge('signage_device_throttled_since_boot', 'Raspberry Pi get_throttled, occurred since boot (last heartbeat).', ['device', 'condition'], flags(1));
    this.gauge('signage_device_group', 'Group membership from the fleet config (1 per device and group); join with on(device) group_right.', ['device', 'group'], (s, set) => {
      for (const g of s.groups) set({ device: g.device, group: g.group }, 1);
    });
    this.counter('signage_device_store_replaced_total', 'Times the screen came back with a new storeId (a replaced SD card or wiped data dir).', d, (s, inc) => {
      for (const x of s!.devices) inc({ device: x.id }, x.storeReplaced);
    });
    this.counter('signage_plays_total', 'Play events archived, by outcome.', ['device', 'outcome'], (s, inc) => {
      for (const x of s!.devices) for (const o of new Set<string>([...OUTCOMES, ...(s!.plays.get(x.id)?.keys() ?? [])])) inc({ device: x.id, outcome: o }, s!.plays.get(x.id)?.get(o) ?? 0);
    });
  }

  private campaignMetrics(): void {
    const labels = ['device', 'campaign', 'day'] as const;
    const each = (pick: (c: Snapshot['campaigns'][number]) => number | undefined) => (s: Snapshot, set: (l: Record<(typeof labels)[number], string>, v: number) => void): void => {
      for (const c of s.campaigns) {
        const v = pick(c);
        if (v !== undefined) set({ device: c.device, campaign: c.campaign, day: c.day }, v);
      }
    };
    this.gauge('signage_campaign_played', "Completed in-window plays archived for the screen's current day (the report's played).", labels, each((c) => c.played));
    this.gauge('signage_campaign_reported_played', "The screen's own count for its current day (heartbeat or latest play event).", labels, each((c) => c.reported));
    this.gauge('signage_campaign_target', "Plays the screen planned for its current day (the campaign's timesPerDay after overrides).", labels, each((c) => c.target));
    this.gauge('signage_campaign_on_track', "1 when the screen said played + planned in the day's remaining window time reaches the target (heartbeat onTrack).", labels, each((c) => (c.onTrack === undefined ? undefined : Number(c.onTrack))));
  }

  private ingestMetrics(): void {
    const { ingest, batcher } = this.opts;
    const plain = (name: string, help: string, read: () => number): void => this.counter(name, help, [], (_, inc) => inc({}, read()), false);
    if (ingest) {
      plain('signage_ingest_messages_received_total', 'MQTT messages this ingest process received.', () => ingest.counters.received);
      plain('signage_ingest_connects_total', 'Broker connections this ingest process made.', () => ingest.counters.connects);
      plain('signage_ingest_read_pauses_total', 'Times the ingest stopped reading from the broker because its batcher was at the high-water mark.', () => ingest.counters.held);
      this.counter('signage_ingest_messages_dropped_total', 'Messages dropped as bad (spoofed, too big, malformed, ...), by reason.', ['reason'], (_, inc) => {
        for (const [key, n] of Object.entries(ingest.counters.badByReason)) inc({ reason: reasonLabel(key) }, n);
      }, false);
    }
    if (batcher) {
      const t = batcher.totals;
      plain('signage_ingest_batches_total', 'Archive transactions committed.', () => t.batches);
      plain('signage_ingest_rows_total', 'Messages written in committed transactions.', () => t.rows);
      plain('signage_ingest_plays_archived_total', 'Plays new to the archive.', () => t.plays);
      plain('signage_ingest_duplicate_plays_total', 'Plays already archived (redelivery), ignored.', () => t.duplicates);
      plain('signage_ingest_heartbeats_shed_total', 'Heartbeats dropped because too many waited for the archive.', () => t.dropped);
      plain('signage_ingest_write_failures_total', 'Archive transactions that failed (retried).', () => t.failures);
    }
  }
}
