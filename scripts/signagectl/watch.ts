import { parseArgs } from 'node:util';
import { deviceTopic, parseDeviceTopic } from '../../agent/protocol/topics.js';
import { CONNECTION_HELP, CONNECTION_OPTIONS, type Io, connect, connectionFrom, parseDuration } from './conn.js';
import { age, renderTable } from './table.js';

// `watch`: the fleet as seen from the retained status (online/offline, PROTOCOL §8) and the
// heartbeats. A screen whose status says online but whose heartbeats stopped for 3 intervals
// is "stale": its link is half dead or the agent is stuck, which the Will alone never shows.

export const WATCH_HELP = `Usage: signagectl watch [--once --for S] [--heartbeat-sec N] [--every S]

A live table of the fleet from {prefix}/device/+/status and /heartbeat: state (online, offline, or
stale: online but no heartbeat for 3 intervals), last seen, CPU temperature, what is playing,
today's plays/target summed over campaigns ("!" when a campaign is behind), outbox backlog and
clock sync. On a terminal the table redraws every second with stale rows in yellow and offline
rows in red; otherwise it is printed as plain text every --every seconds (default 30s).
  --once --for S     collect for S (default 5s), print one table and exit
  --heartbeat-sec N  the fleet's heartbeat interval when it cannot be learned (default 30)

${CONNECTION_HELP}`;

interface Compliance {
  campaignId?: string;
  day?: string;
  played?: number;
  target?: number;
  onTrack?: boolean;
}

interface DeviceRow {
  id: string;
  online?: boolean;
  session?: number;
  lastSeen?: number;
  lastHeartbeat?: number;
  intervalMs?: number;
  tempC?: number | null;
  player?: { state?: string; campaignId?: string | null };
  compliance: Compliance[];
  backlog?: number;
  clockSynced?: boolean;
}

export type RowState = 'online' | 'offline' | 'stale' | 'unknown';

export class Fleet {
  private readonly devices = new Map<string, DeviceRow>();

  constructor(private readonly prefix: string, private readonly defaultIntervalMs = 30_000) {}

  topics(): string[] {
    return [deviceTopic(this.prefix, '+', 'status'), deviceTopic(this.prefix, '+', 'heartbeat')];
  }

  update(topic: string, payload: Buffer, now: number): void {
    const m = parseDeviceTopic(this.prefix, topic);
    if (m?.kind !== 'status' && m?.kind !== 'heartbeat') return;
    const id = m.deviceId;
    let doc: Record<string, unknown>;
    try {
      doc = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
    } catch {
      return;
    }
    if (!doc || typeof doc !== 'object') return;
    const row = this.devices.get(id) ?? { id, compliance: [] };
    this.devices.set(id, row);
    if (m.kind === 'status') {
      const session = typeof doc.session === 'number' ? doc.session : undefined;
      // A late Will of an older session must not mark the current session offline.
      if (session !== undefined && row.session !== undefined && session < row.session) return;
      if (session !== undefined) row.session = session;
      row.online = doc.online === true;
      if (row.online) row.lastSeen = Math.max(row.lastSeen ?? 0, now);
      return;
    }
    if (row.lastHeartbeat !== undefined) {
      const gap = now - row.lastHeartbeat;
      // Learn the interval from consecutive beats; a long gap (an outage) is not an interval.
      if (gap > 500 && (row.intervalMs === undefined || gap < row.intervalMs * 1.5)) row.intervalMs = gap;
    }
    row.lastHeartbeat = now;
    row.lastSeen = now;
    row.online = true;
    if (typeof doc.cpuTempC === 'number' || doc.cpuTempC === null) row.tempC = doc.cpuTempC;
    if (doc.player && typeof doc.player === 'object') row.player = doc.player as DeviceRow['player'];
    if (Array.isArray(doc.compliance)) row.compliance = doc.compliance as Compliance[];
    if (typeof doc.backlog === 'number') row.backlog = doc.backlog;
    if (typeof doc.clockSynced === 'boolean') row.clockSynced = doc.clockSynced;
  }

  state(row: DeviceRow, now: number): RowState {
    if (row.online === false) return 'offline';
    if (row.online === undefined) return 'unknown';
    const interval = row.intervalMs ?? this.defaultIntervalMs;
    const since = row.lastHeartbeat ?? row.lastSeen;
    return since === undefined || now - since > 3 * interval ? 'stale' : 'online';
  }

  /** Table lines; with `color`, stale rows yellow and offline rows red (ANSI). */
  render(now: number, color = false): string[] {
    const rows = [...this.devices.values()].sort((a, b) => a.id.localeCompare(b.id));
    const states = rows.map((r) => this.state(r, now));
    const cells = rows.map((r, i) => [
      r.id,
      states[i]!,
      r.lastSeen === undefined ? '-' : `${age(now - r.lastSeen)} ago`,
      typeof r.tempC === 'number' ? `${r.tempC.toFixed(1)}°C` : '-',
      playing(r),
      today(r.compliance),
      r.backlog === undefined ? '-' : String(r.backlog),
      r.clockSynced === undefined ? '-' : r.clockSynced ? 'synced' : 'NOT SYNCED',
    ]);
    const lines = renderTable(['DEVICE', 'STATE', 'LAST SEEN', 'TEMP', 'PLAYING', 'TODAY', 'BACKLOG', 'CLOCK'], cells);
    const n = (s: RowState): number => states.filter((x) => x === s).length;
    const summary = `${rows.length} screen(s): ${n('online')} online, ${n('stale')} stale, ${n('offline')} offline${n('unknown') ? `, ${n('unknown')} unknown` : ''}`;
    if (!color) return [...lines, summary];
    const paint = (s: RowState, l: string): string => (s === 'stale' ? `\x1b[33m${l}\x1b[0m` : s === 'offline' ? `\x1b[31m${l}\x1b[0m` : l);
    return [`\x1b[1m${lines[0]}\x1b[0m`, ...lines.slice(1).map((l, i) => paint(states[i]!, l)), summary];
  }
}

function playing(r: DeviceRow): string {
  const p = r.player;
  if (!p) return '-';
  if (p.state === 'playing') return p.campaignId ? p.campaignId : 'loop';
  return p.state ?? '-';
}

/** Plays/target summed over the latest day's campaigns, "!" when any is behind. */
function today(list: Compliance[]): string {
  if (list.length === 0) return '-';
  const day = list.map((c) => c.day ?? '').sort().at(-1);
  const cur = list.filter((c) => (c.day ?? '') === day);
  const played = cur.reduce((s, c) => s + (c.played ?? 0), 0);
  const target = cur.reduce((s, c) => s + (c.target ?? 0), 0);
  return `${played}/${target}${cur.some((c) => c.onTrack === false) ? ' !' : ''}`;
}

export async function watchCommand(argv: string[], io: Io): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...CONNECTION_OPTIONS, once: { type: 'boolean' }, for: { type: 'string' }, 'heartbeat-sec': { type: 'string' }, every: { type: 'string' } } });
  if (values.help) return (io.out(WATCH_HELP), 0);
  const conn = connectionFrom(values);
  const hb = values['heartbeat-sec'] === undefined ? 30 : Number(values['heartbeat-sec']);
  const fleet = new Fleet(conn.prefix, hb * 1000);
  const client = await connect(conn);
  client.on('message', (topic, payload) => fleet.update(topic, payload, Date.now()));
  await client.subscribeAsync(fleet.topics(), { qos: 0 });
  try {
    if (values.once) {
      await sleep(parseDuration(values.for ?? '5s', '--for'));
      for (const l of fleet.render(Date.now(), false)) io.out(l);
      return 0;
    }
    const tty = io.isTTY && io.write !== undefined;
    const every = tty ? 1000 : parseDuration(values.every ?? '30s', '--every');
    for (;;) {
      await sleep(tty ? 1000 : every);
      const lines = fleet.render(Date.now(), tty);
      if (tty) io.write!(`\x1b[H\x1b[2J${new Date().toISOString()}  (Ctrl-C to quit)\n${lines.join('\n')}\n`);
      else {
        io.out(`--- ${new Date().toISOString()}`);
        for (const l of lines) io.out(l);
      }
    }
  } finally {
    await client.endAsync().catch(() => undefined);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
