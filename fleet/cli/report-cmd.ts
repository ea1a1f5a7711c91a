import { existsSync } from 'node:fs';
import { MIGRATIONS, schemaVersion } from '../archive/migrations.js';
import { describeTarget, isPostgresUrl, openDatabase } from '../archive/open.js';
import { toCsv, toJson, toText } from '../report/format.js';
import { compliance } from '../report/report.js';
import type { Command } from './usage.js';

/**
 * `report`: reads the archive and returns the text to print. A SQLite file is opened read-only (a
 * running ingest keeps writing); a pg database is only read (SELECTs).
 */
export async function runReport(cmd: Extract<Command, { name: 'report' }>): Promise<string> {
  if (!isPostgresUrl(cmd.db) && !existsSync(cmd.db)) throw new Error(`no archive at ${cmd.db}`);
  const db = await openDatabase(cmd.db, { readOnly: true }).catch((e: Error) => { throw new Error(`cannot open ${describeTarget(cmd.db)}: ${e.message}`); });
  try {
    const r = await db.read(async (q) => {
      const v = await schemaVersion(q);
      if (v !== MIGRATIONS.length) throw new Error(`archive schema ${v}, this signage-fleet reads ${MIGRATIONS.length}: run serve once to migrate it`);
      return compliance(q, { from: cmd.from, to: cmd.to, ...(cmd.group ? { group: cmd.group } : {}), ...(cmd.campaign ? { campaign: cmd.campaign } : {}) });
    });
    return cmd.format === 'csv' ? toCsv(r) : cmd.format === 'json' ? toJson(r) : toText(r);
  } finally {
    await db.close();
  }
}
