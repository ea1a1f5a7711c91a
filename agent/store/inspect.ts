import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Db } from './db.js';
import { migrations } from './migrations.js';
import { markerOf } from './recovery.js';

/** What `doctor` can say about a store without changing it (read-only open: a broken -wal stays as it is). */
export interface StoreInspection {
  exists: boolean;
  /** agent.db.broken-* files beside it: stores the agent moved aside. */
  movedAside: string[];
  /** The marker names a store that is not there. */
  missing: boolean;
  schema?: number;
  storeId?: string;
  /** Why it cannot be opened (the agent will move it aside at its next start). */
  error?: string;
}

export async function inspectStore(file: string): Promise<StoreInspection> {
  const dir = path.dirname(file);
  const base = path.basename(file);
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    names = [];
  }
  const movedAside = names.filter((n) => n.startsWith(`${base}.broken-`) && !/-(wal|shm)$/.test(n)).sort();
  const exists = existsSync(file);
  if (!exists) return { exists, movedAside, missing: existsSync(markerOf(file)) };
  let db: Db | undefined;
  try {
    db = await Db.open(file, { readOnly: true });
    const facts = await db.read(async (q) => {
      const check = await q.all<{ quick_check: string }>('PRAGMA quick_check');
      if (check[0]?.quick_check !== 'ok') throw new Error(`quick_check: ${check.map((r) => r.quick_check).slice(0, 3).join('; ')}`);
      const schema = (await q.get<{ user_version: number }>('PRAGMA user_version'))?.user_version ?? 0;
      const latest = migrations[migrations.length - 1]?.version ?? 0;
      if (schema > latest) throw new Error(`schema ${schema} is newer than this agent understands (${latest})`);
      const id = schema >= 2 ? (await q.get<{ value: string }>(`SELECT value FROM meta WHERE key = 'store_id'`))?.value : undefined;
      return { schema, ...(id ? { storeId: id } : {}) };
    });
    return { exists, movedAside, missing: false, ...facts };
  } catch (e) {
    return { exists, movedAside, missing: false, error: `${(e as { code?: string }).code ?? 'error'}: ${(e as Error).message}` };
  } finally {
    await db?.close().catch(() => undefined);
  }
}
