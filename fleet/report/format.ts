import type { Report } from './report.js';

// The report's three faces: a text table (default), CSV (two sections: screens, then groups,
// separated by one empty line, each with its header), JSON (the Report object).

const csvCell = (v: string | number | boolean): string => {
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

export function toCsv(r: Report): string {
  const screens = [
    'day,deviceId,groups,campaignId,played,target,met,reported,source',
    ...r.rows.map((x) => [x.day, x.deviceId, x.groups.join(' '), x.campaignId, x.played, x.target, x.met, x.reported, x.source].map(csvCell).join(',')),
  ];
  const groups = ['day,group,campaignId,screens,met,share', ...r.groups.map((g) => [g.day, g.group, g.campaignId, g.screens, g.met, g.share].map(csvCell).join(','))];
  return `${screens.join('\n')}\n\n${groups.join('\n')}\n`;
}

export function toJson(r: Report): string {
  return `${JSON.stringify(r, null, 2)}\n`;
}

function table(head: string[], body: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(w[i] ?? 0)).join('  ').trimEnd();
  return [line(head), ...body.map(line)].join('\n');
}

export function toText(r: Report): string {
  if (r.rows.length === 0) return `no screens with a plan between ${r.from} and ${r.to}\n`;
  const screens = table(
    ['day', 'screen', 'campaign', 'played/target', 'met', 'note'],
    r.rows.map((x) => [x.day, x.deviceId, x.campaignId, `${x.played}/${x.target}`, x.met ? 'yes' : 'NO', x.source === 'last-known' ? 'silent all day (last known plan)' : x.reported > x.played ? `screen counts ${x.reported}` : '']),
  );
  const groups = table(['day', 'group', 'campaign', 'met', 'share'], r.groups.map((g) => [g.day, g.group, g.campaignId, `${g.met}/${g.screens}`, `${Math.round(g.share * 100)}%`]));
  return `${screens}\n\n${groups}\n`;
}
