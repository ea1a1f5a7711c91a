import { parseArgs } from 'node:util';
import type { Config } from '../config/config.js';
import { localDateSchema } from '../protocol/schemas.js';
import { parseOutage, simulate, type Outage } from '../sim/simulation.js';
import { readAssignmentFile } from './desired-file.js';
import type { CliIo } from './io.js';
import { UsageError } from './usage.js';

export async function simulateCommand(args: string[], config: Config, io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string' },
      assignment: { type: 'string' },
      from: { type: 'string' },
      days: { type: 'string' },
      outage: { type: 'string', multiple: true },
      alert: { type: 'string', multiple: true },
      json: { type: 'boolean' },
    },
    strict: true,
  });
  const problems: string[] = [];
  if (!values.assignment) problems.push('--assignment FILE is required');
  if (!values.from || !localDateSchema.safeParse(values.from).success) problems.push('--from must be a date YYYY-MM-DD');
  const days = Number(values.days);
  if (!Number.isInteger(days) || days < 1 || days > 3660) problems.push('--days must be a whole number from 1 to 3660');
  const outages: Outage[] = [];
  for (const o of values.outage ?? []) {
    const p = parseOutage(o);
    if (p) outages.push(p);
    else problems.push(`--outage ${o}: must be HH:MM-HH:MM`);
  }
  const alerts: Outage[] = [];
  for (const o of values.alert ?? []) {
    const p = parseOutage(o);
    if (p) alerts.push(p);
    else problems.push(`--alert ${o}: must be HH:MM-HH:MM`);
  }
  if (problems.length > 0) throw new UsageError(problems.join('\n'));
  const assignment = readAssignmentFile(values.assignment!);

  const result = await simulate({
    deviceId: config.deviceId,
    timezone: config.timezone,
    groups: config.groups,
    assignment,
    from: values.from!,
    days,
    outages,
    alerts,
    log: io.log,
  });
  const rows = result.compliance.map((c) => ({ day: c.day, campaignId: c.campaignId, played: c.played, target: c.target, onTrack: c.onTrack }));
  if (values.json) {
    io.out(JSON.stringify(rows));
    return 0;
  }
  const d = assignment.display;
  if (d?.power || d?.brightness) {
    const power = d.power ? `power on ${d.power.map((w) => `${w.on}-${w.off}`).join(', ')}${d.weekdays ? ` on weekdays ${d.weekdays.join(',')}` : ''}, standby outside (no spot planned then)` : 'always on';
    const levels = d.brightness ? `; brightness ${d.brightness.map((b) => `${b.from} ${b.pct}%`).join(', ')}` : '';
    io.out(`display: ${power}${levels}`);
  }
  const idw = Math.max(8, ...rows.map((r) => r.campaignId.length));
  io.out(`${'day'.padEnd(10)}  ${'campaign'.padEnd(idw)}  played/target`);
  for (const r of rows) {
    io.out(`${r.day}  ${r.campaignId.padEnd(idw)}  ${`${r.played}/${r.target}`.padStart(6)}  ${r.onTrack ? 'on track' : 'SHORT'}`);
  }
  const short = rows.filter((r) => !r.onTrack).length;
  const showings = result.plays.filter((p) => p.campaignId.startsWith('alert:')).length;
  const spots = result.plays.filter((p) => !p.campaignId.startsWith('alert:'));
  const interrupted = spots.filter((p) => p.outcome === 'interrupted').length;
  io.out(`${rows.length} campaign-days, ${rows.length - short} on track, ${short} short; ${spots.length} plays recorded (${interrupted} interrupted by ${alerts.length ? 'outages or alerts' : 'outages'})`);
  if (alerts.length) io.out(`${showings} alert showings (30 s each) in ${values.alert!.join(', ')}: campaigns were planned around them`);
  return 0;
}
