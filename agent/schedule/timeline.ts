import type { EpochMs } from '../core/types.js';
import type { CampaignPlan, Plan } from './planner.js';
import type { WindowSpan } from './windows.js';
import { Zone } from './zoned.js';

// Human output of `signage-agent plan`: the numbers per campaign, then the day on one
// screen. Columns are real elapsed time, so a DST day is one hour shorter or longer and
// the hour ruler shows the jump.

const HOUR_MS = 3_600_000;

function wrapList(items: string[], indent: string, width: number): string[] {
  const lines: string[] = [];
  let cur = '';
  for (const it of items) {
    if (cur && indent.length + cur.length + 1 + it.length > width) {
      lines.push(cur);
      cur = it;
    } else cur = cur ? `${cur} ${it}` : it;
  }
  if (cur) lines.push(cur);
  return lines.map((l) => indent + l);
}

function campaignBlock(cp: CampaignPlan, plan: Plan, zone: Zone, width: number): string[] {
  const state = cp.onTrack ? 'on track' : `SHORT by ${cp.target - cp.played - cp.planned}`;
  const out = [
    `${cp.campaignId}  target ${cp.target}  played ${cp.played}  planned ${cp.planned}  ${state}${cp.overridden ? '  (override)' : ''}`,
  ];
  const wins = cp.windows.map((w) => `${zone.formatTime(w.start)}-${w.end >= plan.dayEnd ? '24:00:00' : zone.formatTime(w.end)}`);
  const first = '  windows ';
  out.push(...(wins.length ? wrapList(wins, first, width).map((l, i) => (i === 0 ? l : ' '.repeat(first.length) + l.slice(first.length))) : [`${first}none today`]));
  // On a DST day a local time can repeat: name the new offset at the first slot after a change.
  let off = zone.offsetAt(plan.dayStart);
  const times = plan.slots
    .filter((s) => s.campaignId === cp.campaignId)
    .map((s) => {
      const o = zone.offsetAt(s.at);
      if (o === off) return zone.formatTime(s.at);
      off = o;
      return `${zone.formatTime(s.at)}(${zone.formatLocal(s.at).slice(23)})`;
    });
  const lead = '  slots   ';
  out.push(...(times.length ? wrapList(times, lead, width).map((l, i) => (i === 0 ? l : ' '.repeat(lead.length) + l.slice(lead.length))) : [`${lead}none`]));
  return out;
}

function cellChar(cp: CampaignPlan, starts: readonly EpochMs[], from: EpochMs, to: EpochMs): string {
  let n = 0;
  for (const at of starts) if (at >= from && at < to) n++;
  if (n === 1) return '*';
  if (n > 9) return '#';
  if (n > 1) return String(n);
  return cp.windows.some((w) => w.start < to && w.end > from) ? '-' : '.';
}

/** §11 for the timeline: the day's standby spans and brightness periods (agent/display computes them). */
export interface DisplayDay {
  standby: WindowSpan[];
  brightness: Array<WindowSpan & { pct: number }>;
}

function displayLines(d: DisplayDay, plan: Plan, zone: Zone): string[] {
  const span = (s: WindowSpan): string => `${zone.formatTime(s.start)}-${s.end >= plan.dayEnd ? '24:00:00' : zone.formatTime(s.end)}`;
  return [
    `display  standby ${d.standby.length ? d.standby.map(span).join(' ') : 'none'} (nothing plays then)`,
    `         brightness ${d.brightness.map((b) => `${b.pct}% ${span(b)}`).join(', ')}`,
  ];
}

/** A cell of the power row: '=' on, '_' standby, '/' both within the cell. */
function powerChar(standby: readonly WindowSpan[], from: EpochMs, to: EpochMs): string {
  let off = 0;
  for (const s of standby) off += Math.max(0, Math.min(s.end, to) - Math.max(s.start, from));
  return off <= 0 ? '=' : off >= to - from ? '_' : '/';
}

/** A cell of the brightness row: the level in tens at the cell's start (F = 100 %). */
function brightnessChar(periods: DisplayDay['brightness'], from: EpochMs): string {
  const p = periods.find((x) => from >= x.start && from < x.end);
  if (!p) return ' ';
  return p.pct >= 100 ? 'F' : String(Math.floor(p.pct / 10));
}

export function renderPlanText(plan: Plan, tz: string, width = 100, display?: DisplayDay): string {
  const zone = new Zone(tz);
  const lines: string[] = [];
  const hours = (plan.dayEnd - plan.dayStart) / HOUR_MS;
  lines.push(`Plan for ${plan.day} (${tz}), ${hours} h day, re-plan at ${zone.formatLocal(plan.replanAt)}`);
  lines.push('');
  if (display) lines.push(...displayLines(display, plan, zone), '');
  if (plan.campaigns.length === 0) lines.push('No campaign runs today: the loop plays all day.');
  for (const cp of plan.campaigns) {
    lines.push(...campaignBlock(cp, plan, zone, width));
    lines.push('');
  }
  if (plan.campaigns.length === 0 && !display) return lines.join('\n') + '\n';

  const rowLabels = [...plan.campaigns.map((c) => c.campaignId), ...(display ? ['brightness'] : [])];
  const labelW = Math.min(16, Math.max(...rowLabels.map((l) => l.length))) + 1;
  const perHour = Math.max(1, Math.min(4, Math.floor((width - labelW) / Math.ceil(hours))));
  const cellMs = HOUR_MS / perHour;
  const cells = Math.ceil((plan.dayEnd - plan.dayStart) / cellMs);
  lines.push(`Timeline: one column = ${60 / perHour} min; '.' outside windows, '-' window, '*' a spot, 2-9 spots, '#' more`);
  if (display) lines.push(`          power '=' on, '_' standby, '/' both; brightness in tens of percent, 'F' full`);

  // Hour ruler: the local hour at each cell where a local hour starts, every other hour
  // when a column is too narrow for two digits per hour.
  const ruler = Array<string>(cells).fill(' ');
  const step = perHour >= 3 ? 1 : perHour === 2 ? 2 : 3;
  for (let i = 0; i < cells; i++) {
    const from = plan.dayStart + i * cellMs;
    const t = zone.formatTime(from);
    if (!t.endsWith(':00:00') && !(i === 0)) continue;
    const h = Number(t.slice(0, 2));
    if (h % step !== 0 || ruler[i] !== ' ' || (i > 0 && ruler[i - 1] !== ' ')) continue;
    const lab = String(h).padStart(2, '0');
    ruler[i] = lab[0]!;
    if (i + 1 < cells) ruler[i + 1] = lab[1]!;
  }
  lines.push(`${''.padEnd(labelW)}${ruler.join('')}`);
  for (const cp of plan.campaigns) {
    const starts = plan.slots.filter((s) => s.campaignId === cp.campaignId).map((s) => s.at);
    let row = '';
    for (let i = 0; i < cells; i++) {
      const from = plan.dayStart + i * cellMs;
      row += cellChar(cp, starts, from, Math.min(plan.dayEnd, from + cellMs));
    }
    lines.push(`${cp.campaignId.slice(0, labelW - 1).padEnd(labelW)}${row}`);
  }
  if (display) {
    let power = '';
    let bright = '';
    for (let i = 0; i < cells; i++) {
      const from = plan.dayStart + i * cellMs;
      power += powerChar(display.standby, from, Math.min(plan.dayEnd, from + cellMs));
      bright += brightnessChar(display.brightness, from);
    }
    lines.push(`${'power'.padEnd(labelW)}${power}`, `${'brightness'.padEnd(labelW)}${bright}`);
  }
  return lines.join('\n') + '\n';
}
