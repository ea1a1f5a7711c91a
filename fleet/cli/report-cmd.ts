import { existsSync } from 'node:fs';
import { Db } from '../archive/db.js';
import { MIGRATIONS } from '../archive/migrations.js';
import { toCsv, toJson, toText } from '../report/format.js';
import { compliance } from '../report/report.js';
import type { Command } from './usage.js';

/** `report`: reads the archive (read-only: a running ingest keeps writing) and returns the text to print. */
export async function runReport(cmd: Extract<Command, { name: 'report' }>): Promise<string> {
  if (!existsSync(cmd.db)) throw new Error(`no archive at ${cmd.db}`);
  const db = await Db.open(cmd.db, { readOnly: true });
  try {
    const r = await db.read(async (q) => {
      await q.exec('PRAGMA busy_timeout = 10000');
      const v = (await q.get<{ user_version: number }>('PRAGMA user_version'))?.user_version ?? 0;
      if (v !== MIGRATIONS.length) throw new Error(`archive schema ${v}, this signage-fleet reads ${MIGRATIONS.length}: run serve once to migrate it`);
      return compliance(q, { from: cmd.from, to: cmd.to, ...(cmd.group ? { group: cmd.group } : {}), ...(cmd.campaign ? { campaign: cmd.campaign } : {}) });
    });
    return cmd.format === 'csv' ? toCsv(r) : cmd.format === 'json' ? toJson(r) : toText(r);
  } finally {
    await db.close();
  }
}
