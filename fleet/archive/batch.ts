import type { PlayEvent } from '../../agent/protocol/index.js';
import type { Item } from '../ingest/decode.js';
import type { Database, TxOptions } from './db.js';
import { noteStores, StoreState, trackSeqs, type SeqBatch, type StoreSighting } from './stores.js';
import type { Statements } from './rows.js';
import { afterPlays, emptyStats, insertEvents, insertPlays, lockDevices, saveHeartbeats, saveStatuses, sqlitePlayStatements, type BatchStats } from './writes.js';

/** Entries each of KnownRows' sets holds at most (a city's screens, several times over). */
const KNOWN_MAX = 200_000;

/**
 * Devices and (device, store) pairs this writer has seen committed. Rows of both are never deleted,
 * so a batch can skip inserting what is known: two statements fewer a batch, and each statement
 * costs hops between the event loop and sqlite3's thread (rows.ts). Bounded: cleared past KNOWN_MAX
 * entries, which only costs those inserts again.
 */
export class KnownRows {
  readonly devices = new Set<string>();
  readonly stores = new Set<string>();

  add(devices: readonly string[], stores: readonly string[]): void {
    if (this.devices.size + devices.length > KNOWN_MAX) this.devices.clear();
    if (this.stores.size + stores.length > KNOWN_MAX) this.stores.clear();
    for (const d of devices) this.devices.add(d);
    for (const s of stores) this.stores.add(s);
  }
}

/**
 * A batch's plays' INSERT built and bound before its transaction (Archive.write's `next`): for these
 * very `items`, received at `at`. SQLite only: pg has no use for it (its driver sends text).
 */
export interface Ahead {
  items: readonly Item[];
  at: string;
  stmts: Statements;
}

export function buildAhead(db: Database, items: readonly Item[], at: string, ingestId: string): Ahead {
  const plays = items.flatMap((it) => (it.kind === 'play' ? [it] : []));
  const stmts = sqlitePlayStatements(plays, at, ingestId);
  for (const [sql, params] of stmts) void db.prebind?.(sql, params);
  return { items, at, stmts };
}

/** `built`: the plays' INSERT from buildAhead for these very items; `committing`: TxOptions'. */
export interface BatchOptions extends TxOptions {
  built?: Statements;
}

/**
 * One ingest batch in one transaction; resolves once it is committed. A batch is a few set-based
 * statements whatever its size (writes.ts, stores.ts), applied in this order: (pg: devices), plays,
 * the stores read, events, new stores, seqs, (SQLite: devices), heartbeats, statuses, then what the
 * new plays change (compliance, last play).
 */
export async function writeBatch(db: Database, items: readonly Item[], at: string, ingestId: string, known: KnownRows, opts: BatchOptions = {}): Promise<BatchStats> {
  const plays: Array<Item & { kind: 'play' }> = [];
  const events: Array<Item & { kind: 'event' }> = [];
  // A batch may hold many heartbeats and statuses of one screen: the newest heartbeat, and the
  // last status of the highest session, are what the devices row keeps.
  const heartbeats = new Map<string, Item & { kind: 'heartbeat' }>();
  const statuses = new Map<string, { it: Item & { kind: 'status' }; storeId: string | null }>();
  const sightings = new Map<string, StoreSighting>();
  let statusCount = 0;
  const sight = (deviceId: string, storeId: string, source: string): void => {
    const k = `${deviceId}\u0000${storeId}`;
    if (!sightings.has(k)) sightings.set(k, { deviceId, storeId, source });
  };
  for (const it of items) {
    switch (it.kind) {
      case 'play':
        sight(it.deviceId, it.play.storeId, 'play');
        plays.push(it);
        break;
      case 'event':
        events.push(it);
        break;
      case 'heartbeat': {
        if (it.heartbeat.storeId) sight(it.deviceId, it.heartbeat.storeId, 'heartbeat');
        const had = heartbeats.get(it.deviceId);
        if (!had || had.heartbeat.ts <= it.heartbeat.ts) heartbeats.set(it.deviceId, it);
        break;
      }
      case 'status': {
        const s = it.status;
        statusCount++;
        if (s.online) sight(it.deviceId, s.storeId, 'status');
        const had = statuses.get(it.deviceId);
        if (had && had.it.status.session > s.session) break;
        const storeId = s.online ? s.storeId : had && had.it.status.session === s.session ? had.storeId : null;
        statuses.set(it.deviceId, { it, storeId });
        break;
      }
    }
  }
  const devices = [...new Set(items.map((it) => it.deviceId))];
  const unseen = [...sightings].filter(([k]) => !known.stores.has(k));
  const stats = await db.tx(async (q) => {
    // Everything the transaction counts starts inside it: pg runs it again after a deadlock or
    // serialization abort, and a retry must not count twice.
    const stats = emptyStats();
    // pg locks every device of the batch first (lockDevices says why).
    if (q.dialect === 'postgres') await lockDevices(q, devices, at);
    // The plays first: on SQLite their INSERT is the batch's longest statement, and going first it
    // runs while the event loop works through the packets the last batch's acks let in (a statement
    // issued then waits that long for its answer anyway). Then the batch's one read of stores (the
    // plays do not touch them); from there on, every statement but the events' is a write nothing
    // here reads back (Query.later), so SQLite sends them all with the COMMIT: BEGIN, the plays,
    // this read and the rest is four calls to sqlite3's thread.
    const added = await insertPlays(q, plays, at, ingestId, opts.built);
    const sighted = unseen.map(([, v]) => v);
    const state = await StoreState.read(q, [...new Set([...plays.map((p) => p.deviceId), ...sighted.map((s) => s.deviceId)])]);
    const stores = noteStores(q, sighted, state, at);
    stats.storesReplaced = stores.replaced;
    const seqs = new Map<string, SeqBatch>();
    const newest = new Map<string, PlayEvent>();
    for (const { play: p } of plays) {
      // The same play twice in one batch is inserted once: the second is a duplicate.
      if (!added.delete(p.eventId)) { stats.duplicates++; continue; }
      stats.plays++;
      const c = `${p.deviceId}\u0000${p.day}\u0000${p.campaignId}`;
      const had = newest.get(c);
      if (!had || had.endedAt <= p.endedAt) newest.set(c, p);
      const k = `${p.deviceId}\u0000${p.storeId}`;
      const s = seqs.get(k) ?? { deviceId: p.deviceId, storeId: p.storeId, seqs: [] };
      s.seqs.push(p.seq);
      seqs.set(k, s);
    }
    stats.events = await insertEvents(q, events, at);
    await stores.write();
    stats.gapsOpened = await trackSeqs(q, [...seqs.values()], state, at);
    // SQLite only needs the rows to exist (an events-only screen has no other writer of its row).
    if (q.dialect === 'sqlite') await lockDevices(q, devices.filter((d) => !known.devices.has(d)), at);
    await saveHeartbeats(q, [...heartbeats.values()], at);
    stats.heartbeats = heartbeats.size;
    await saveStatuses(q, [...statuses.values()].map(({ it, storeId }) => ({ ...it, storeId })), at);
    stats.statuses = statusCount;
    await afterPlays(q, newest.values(), at);
    return stats;
  }, opts.committing ? { committing: opts.committing } : {});
  // Only once committed: a rolled-back batch's rows do not exist.
  known.add(devices, unseen.map(([k]) => k));
  return stats;
}
