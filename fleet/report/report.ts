import type { Query } from '../archive/db.js';
import { daysBetween } from './days.js';

// The compliance report (docs/fleet.md#the-compliance-report): per day, per screen, per campaign,
// played (completed in-window plays in the archive) against the target the screen planned (its
// play events' and heartbeats' `target`); per group, the share of screens that met it. A screen
// known to the archive with no word on a day is still a row: played 0, target from its last plan.

export interface ReportQuery {
  from: string;
  to: string;
  group?: string;
  campaign?: string;
}

export interface ScreenRow {
  day: string;
  deviceId: string;
  groups: string[];
  campaignId: string;
  /** Completed in-window plays archived for the day. */
  played: number;
  target: number;
  met: boolean;
  /** The screen's own count (heartbeat or latest play event); above `played` while plays are missing. */
  reported: number;
  /** `reported`: the screen spoke that day; `last-known`: it did not, the target is its last plan's. */
  source: 'reported' | 'last-known';
}

export interface GroupRow {
  day: string;
  group: string;
  campaignId: string;
  screens: number;
  met: number;
  share: number;
}

export interface Report {
  from: string;
  to: string;
  rows: ScreenRow[];
  groups: GroupRow[];
}

interface Plan {
  campaign_id: string;
  played: number;
  target: number;
}

export async function compliance(q: Query, r: ReportQuery): Promise<Report> {
  const groupRows = await q.all<{ group_name: string; device_id: string }>('SELECT group_name, device_id FROM device_groups ORDER BY group_name');
  const groupsOf = new Map<string, string[]>();
  for (const g of groupRows) groupsOf.set(g.device_id, [...(groupsOf.get(g.device_id) ?? []), g.group_name]);
  const inGroup = (id: string): boolean => !r.group || r.group === 'all' || (groupsOf.get(id) ?? []).includes(r.group);

  // A screen is in the report from the first day it reported a plan or a play.
  const firsts = await q.all<{ device_id: string; first_day: string }>(
    `SELECT device_id, MIN(day) AS first_day FROM (SELECT device_id, day FROM compliance UNION ALL SELECT device_id, day FROM plays) AS seen GROUP BY device_id ORDER BY device_id`,
  );
  const plays = await q.all<{ device_id: string; day: string; campaign_id: string; n: number }>(
    `SELECT device_id, day, campaign_id, COUNT(*) AS n FROM plays WHERE day BETWEEN ? AND ? AND outcome = 'completed' AND in_window = 1
     GROUP BY device_id, day, campaign_id`,
    [r.from, r.to],
  );
  const playedOf = new Map(plays.map((p) => [`${p.device_id}|${p.day}|${p.campaign_id}`, p.n]));

  const rows: ScreenRow[] = [];
  for (const { device_id: id, first_day: first } of firsts) {
    if (!inGroup(id)) continue;
    for (const day of daysBetween(r.from, r.to)) {
      if (day < first) continue;
      let source: ScreenRow['source'] = 'reported';
      let plan = await q.all<Plan>('SELECT campaign_id, played, target FROM compliance WHERE device_id = ? AND day = ? ORDER BY campaign_id', [id, day]);
      if (plan.length === 0) {
        source = 'last-known';
        plan = await q.all<Plan>(
          `SELECT campaign_id, 0 AS played, target FROM compliance WHERE device_id = ?
             AND day = (SELECT MAX(day) FROM compliance WHERE device_id = ? AND day < ?) ORDER BY campaign_id`,
          [id, id, day],
        );
      }
      for (const p of plan) {
        if (r.campaign && p.campaign_id !== r.campaign) continue;
        const played = playedOf.get(`${id}|${day}|${p.campaign_id}`) ?? 0;
        rows.push({ day, deviceId: id, groups: groupsOf.get(id) ?? [], campaignId: p.campaign_id, played, target: p.target, met: played >= p.target, reported: p.played, source });
      }
    }
  }
  rows.sort((a, b) => a.day.localeCompare(b.day) || a.deviceId.localeCompare(b.deviceId) || a.campaignId.localeCompare(b.campaignId));
  return { from: r.from, to: r.to, rows, groups: byGroup(rows, r.group) };
}

/** Per day, group and campaign: how many screens, how many met the target. `all` holds every screen. */
function byGroup(rows: readonly ScreenRow[], only?: string): GroupRow[] {
  const acc = new Map<string, GroupRow>();
  for (const row of rows) {
    for (const group of ['all', ...row.groups]) {
      if (only && group !== only) continue;
      const k = `${row.day}|${group}|${row.campaignId}`;
      const g = acc.get(k) ?? { day: row.day, group, campaignId: row.campaignId, screens: 0, met: 0, share: 0 };
      g.screens++;
      if (row.met) g.met++;
      g.share = Math.round((g.met / g.screens) * 1000) / 1000;
      acc.set(k, g);
    }
  }
  return [...acc.values()].sort((a, b) => a.day.localeCompare(b.day) || a.group.localeCompare(b.group) || a.campaignId.localeCompare(b.campaignId));
}
