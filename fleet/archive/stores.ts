import type { Param, Query } from './db.js';
import { manyLater, manyRows } from './rows.js';
import { applySeqs, type Gap } from './seq.js';

// A batch's store bookkeeping: which storeIds are new (a replaced store), and each store's max seq
// and gaps (loss). Both read the same rows, so a batch reads them once (StoreState.read), before
// its plays go in, and both write with Query.later: on SQLite, one read of the batch's four or
// five calls to sqlite3's thread (db.ts says why calls count).

/** A storeId as the batch met it: the first message that named it says where it was seen. */
export interface StoreSighting {
  deviceId: string;
  storeId: string;
  source: string;
}

/** The seqs newly archived for one (device, store). */
export interface SeqBatch {
  deviceId: string;
  storeId: string;
  seqs: number[];
}

interface StoreRow {
  storeId: string;
  maxSeq: number;
  gaps: Array<Gap & { detected_at: string }>;
}

/**
 * Every store of some devices as the archive had them when read: each device's newest first (several
 * first seen at one instant by id, in both engines; SQLite's rowid, which broke the tie once, does not
 * exist in pg), with its max seq and gaps. Read inside the batch's transaction: no other batch adds
 * or changes these rows until it commits (SQLite's writer holds the file; pg's holds the devices'
 * rows, lockDevices, and stores and gaps are written only by batches).
 */
export class StoreState {
  private readonly byDevice = new Map<string, StoreRow[]>();

  static async read(q: Query, devices: readonly string[]): Promise<StoreState> {
    const state = new StoreState();
    const rows = await manyRows<{ device_id: string; store_id: string; max_seq: number | null; lo: number | null; hi: number | null; detected_at: string | null }>(
      q, devices.map((d) => [d]), 1,
      (v) => `SELECT s.device_id, s.store_id, s.max_seq, g.lo, g.hi, g.detected_at FROM stores s
       LEFT JOIN seq_gaps g ON g.device_id = s.device_id AND g.store_id = s.store_id
       WHERE s.device_id IN (VALUES ${v}) ORDER BY s.device_id, s.first_seen_at DESC, s.store_id DESC, g.lo`);
    for (const r of rows) {
      const stores = state.byDevice.get(r.device_id) ?? [];
      state.byDevice.set(r.device_id, stores);
      let s = stores.at(-1);
      if (s?.storeId !== r.store_id) stores.push(s = { storeId: r.store_id, maxSeq: r.max_seq ?? 0, gaps: [] });
      if (r.lo !== null && r.hi !== null && r.detected_at !== null) s.gaps.push({ lo: r.lo, hi: r.hi, detected_at: r.detected_at });
    }
    return state;
  }

  /** The device's stores, newest first; none if it had none or was not read. */
  of(deviceId: string): readonly StoreRow[] {
    return this.byDevice.get(deviceId) ?? [];
  }
}

/** What a batch's storeIds change (noteStores): how many replaced an older one, and the writes that record it. */
export interface StoreNotes {
  replaced: number;
  /** The new stores and their store_changes rows (Query.later). */
  write(): Promise<void>;
}

/**
 * Which of the storeIds a batch names (in message order, each once; their devices in `state`) are
 * new; a new one beside an older one is a replaced store, kept in store_changes. The store a new one
 * replaced: the one new just before it in this batch, else the newest the archive already had.
 */
export function noteStores(q: Query, seen: readonly StoreSighting[], state: StoreState, at: string): StoreNotes {
  const before = new Map<string, string>();
  const fresh = seen.filter((s) => !state.of(s.deviceId).some((r) => r.storeId === s.storeId));
  const changes: Param[][] = [];
  for (const s of fresh) {
    const prev = before.get(s.deviceId) ?? state.of(s.deviceId)[0]?.storeId;
    before.set(s.deviceId, s.storeId);
    if (prev !== undefined) changes.push([s.deviceId, prev, s.storeId, s.source, at]);
  }
  return {
    replaced: changes.length,
    write: async () => {
      await manyLater(q, fresh.map((s) => [s.deviceId, s.storeId, at]), 3, (v) => `INSERT INTO stores (device_id, store_id, first_seen_at) VALUES ${v} ON CONFLICT DO NOTHING`);
      await manyLater(q, changes, 5, (v) => `INSERT INTO store_changes (device_id, previous_store_id, store_id, source, seen_at) VALUES ${v}`);
    },
  };
}

/**
 * Folds newly archived seqs into each (device, store)'s max and gaps (their devices in `state`; a
 * store not there starts at max 0, no gaps); returns how many gaps opened. Gap rows are rewritten
 * only where they changed.
 */
export async function trackSeqs(q: Query, batches: readonly SeqBatch[], state: StoreState, at: string): Promise<number> {
  const maxRows: Param[][] = [];
  const rewritten: Param[][] = [];
  const gapRows: Param[][] = [];
  let opened = 0;
  for (const b of batches) {
    const had = state.of(b.deviceId).find((r) => r.storeId === b.storeId);
    const gaps = had?.gaps ?? [];
    const next = applySeqs({ maxSeq: had?.maxSeq ?? 0, gaps }, b.seqs);
    maxRows.push([b.deviceId, b.storeId, at, next.maxSeq]);
    const same = next.gaps.length === gaps.length && next.gaps.every((g, i) => g.lo === gaps[i]?.lo && g.hi === gaps[i]?.hi);
    if (same) continue;
    rewritten.push([b.deviceId, b.storeId]);
    for (const g of next.gaps) {
      // A gap split by a late arrival keeps the detection time of the gap it came from.
      const from = gaps.find((o) => o.lo <= g.lo && g.hi <= o.hi);
      if (!from) opened++;
      gapRows.push([b.deviceId, b.storeId, g.lo, g.hi, from?.detected_at ?? at]);
    }
  }
  await manyLater(q, maxRows, 4, (v) => `INSERT INTO stores (device_id, store_id, first_seen_at, max_seq) VALUES ${v}
     ON CONFLICT (device_id, store_id) DO UPDATE SET max_seq = excluded.max_seq`);
  await manyLater(q, rewritten, 2, (v) => `DELETE FROM seq_gaps WHERE (device_id, store_id) IN (VALUES ${v})`);
  await manyLater(q, gapRows, 5, (v) => `INSERT INTO seq_gaps (device_id, store_id, lo, hi, detected_at) VALUES ${v}`);
  return opened;
}
