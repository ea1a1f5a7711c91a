import { parseArgs } from 'node:util';
import { isDay } from '../report/days.js';

export const USAGE = `signage-fleet: the fleet side of signage-agent (docs/fleet.md)

  signage-fleet serve --config fleet.json [--db FILE|postgres://…]
      ingest status, heartbeats, plays and events over MQTT 5 into the archive; runs until SIGTERM
      (--db: the archive instead of the config's db: a SQLite file or a PostgreSQL URL)
  signage-fleet report --db FILE|postgres://… --from YYYY-MM-DD --to YYYY-MM-DD [--group G] [--campaign C] [--csv|--json]
      per day, screen and campaign: played/target; per group: the share of screens that met it
  signage-fleet simulate-fleet --devices N --broker URL [--heartbeat-sec 10] [--plays-per-hour 60] [--duration 5m]
      [--spot-sec 15] [--prefix signage] [--id-prefix sim-] [--timezone TZ] [--report FILE]
      N virtual screens (the agent's engine, store and link, a simulated player): sizes a broker, loads the ingest
  signage-fleet --version | --help
`;

export class UsageError extends Error {}

export type Command =
  | { name: 'serve'; config: string; db?: string }
  | { name: 'report'; db: string; from: string; to: string; group?: string; campaign?: string; format: 'text' | 'csv' | 'json' }
  | { name: 'simulate-fleet'; args: string[] }
  | { name: 'help' }
  | { name: 'version' };

export function parseCommand(argv: string[]): Command {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') return { name: 'help' };
  if (cmd === '--version') return { name: 'version' };
  // Its options are the simulator's own (fleet/sim/cli.ts), read there once it is loaded.
  if (cmd === 'simulate-fleet') return { name: 'simulate-fleet', args: rest };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: rest,
      strict: true,
      options: {
        config: { type: 'string' }, db: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' },
        group: { type: 'string' }, campaign: { type: 'string' }, csv: { type: 'boolean' }, json: { type: 'boolean' },
      },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const str = (k: string): string | undefined => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  if (cmd === 'serve') {
    const config = str('config');
    if (!config) throw new UsageError('serve needs --config FILE');
    const db = str('db');
    return { name: 'serve', config, ...(db ? { db } : {}) };
  }
  if (cmd === 'report') {
    const db = str('db');
    const from = str('from');
    const to = str('to') ?? from;
    const problems: string[] = [];
    if (!db) problems.push('--db FILE|postgres://… is required');
    if (!from || !isDay(from)) problems.push('--from YYYY-MM-DD is required');
    if (!to || !isDay(to)) problems.push('--to must be YYYY-MM-DD');
    if (from && to && from > to) problems.push('--from is after --to');
    if (values.csv && values.json) problems.push('--csv and --json exclude each other');
    if (problems.length > 0) throw new UsageError(problems.join('; '));
    const group = str('group');
    const campaign = str('campaign');
    return { name: 'report', db: db!, from: from!, to: to!, ...(group ? { group } : {}), ...(campaign ? { campaign } : {}), format: values.csv ? 'csv' : values.json ? 'json' : 'text' };
  }
  throw new UsageError(`unknown command ${JSON.stringify(cmd)}`);
}
