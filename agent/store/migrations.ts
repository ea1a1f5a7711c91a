import type { Query } from './db.js';

/**
 * Numbered schema migrations. Never edit a shipped one: append a new number. Each runs in the
 * same transaction as its `user_version` bump, so a power cut mid-migration leaves the old schema.
 */
export const migrations: ReadonlyArray<{ version: number; sql: string }> = [
  {
    version: 1,
    sql: `
      CREATE TABLE desired (
        kind TEXT NOT NULL CHECK (kind IN ('assignment','override')),
        source TEXT NOT NULL,
        version INTEGER NOT NULL,
        doc TEXT,
        applied_at INTEGER NOT NULL,
        PRIMARY KEY (kind, source)
      );
      CREATE TABLE plays (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        campaign_id TEXT NOT NULL,
        media_sha256 TEXT NOT NULL,
        day TEXT NOT NULL,
        scheduled_at INTEGER NOT NULL,
        started_at INTEGER NOT NULL,
        in_window INTEGER NOT NULL,
        display TEXT NOT NULL,
        clock_synced INTEGER NOT NULL,
        ended_at INTEGER,
        duration_ms INTEGER,
        outcome TEXT CHECK (outcome IN ('completed','interrupted','failed')),
        seq INTEGER UNIQUE
      );
      CREATE INDEX plays_day ON plays(day, campaign_id);
      CREATE INDEX plays_open ON plays(outcome) WHERE outcome IS NULL;
      CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL CHECK (kind IN ('play','event')),
        payload TEXT NOT NULL,
        created_at INTEGER NOT NULL
      );
      CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
      INSERT INTO counters(name, value) VALUES ('play_seq', 0), ('session', 0);
      CREATE TABLE commands (id TEXT PRIMARY KEY, at INTEGER NOT NULL);
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    `,
  },
  {
    // storeId (PROTOCOL v1.1 §8): made with the store, so a replaced store never repeats an
    // eventId. expected_ms caps an interrupted play's endedAt at its expected end.
    version: 2,
    sql: `
      INSERT OR IGNORE INTO meta(key, value) VALUES ('store_id', lower(hex(randomblob(8))));
      ALTER TABLE plays ADD COLUMN expected_ms INTEGER;
    `,
  },
  {
    // PROTOCOL v1.1 §7: each day's targets and windows as planned, so a past day's report
    // never changes after an override is cleared or an assignment replaced.
    version: 3,
    sql: `
      CREATE TABLE day_ledger (
        day TEXT NOT NULL,
        campaign_id TEXT NOT NULL,
        target INTEGER NOT NULL,
        windows TEXT NOT NULL,
        overridden INTEGER NOT NULL,
        written_at INTEGER NOT NULL,
        PRIMARY KEY (day, campaign_id)
      );
    `,
  },
  {
    // Two outbox lanes (plays, events) each read their own rows oldest first: without this a
    // lane with few rows scans the other lane's whole backlog on every page.
    version: 4,
    sql: `CREATE INDEX outbox_lane ON outbox(kind, id);`,
  },
  {
    // PROTOCOL §9 v1.1 key set (issue 10 item 3): the newest one applied, kept as the signed
    // envelope it came in, so it is verified again against the configured root keys at every
    // start and a box keeps its operator keys while the broker is away. One row.
    version: 5,
    sql: `
      CREATE TABLE key_set (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL,
        envelope TEXT NOT NULL,
        applied_at INTEGER NOT NULL
      );
    `,
  },
  {
    // PROTOCOL §10 alerts are desired state like the rest (versions per topic, kept across
    // restarts, so a pre-staged alert fires after a reboot with the broker down). SQLite cannot
    // widen a CHECK in place: the table is rebuilt with its rows.
    version: 6,
    sql: `
      CREATE TABLE desired_v6 (
        kind TEXT NOT NULL CHECK (kind IN ('assignment','override','alert')),
        source TEXT NOT NULL,
        version INTEGER NOT NULL,
        doc TEXT,
        applied_at INTEGER NOT NULL,
        PRIMARY KEY (kind, source)
      );
      INSERT INTO desired_v6(kind, source, version, doc, applied_at) SELECT kind, source, version, doc, applied_at FROM desired;
      DROP TABLE desired;
      ALTER TABLE desired_v6 RENAME TO desired;
    `,
  },
];

/** The error code of a store whose schema is newer than this agent's migrations. */
export const SCHEMA_NEWER = 'SCHEMA_NEWER';

export async function migrate(q: Query): Promise<number> {
  const row = await q.get<{ user_version: number }>('PRAGMA user_version');
  let current = row?.user_version ?? 0;
  const latest = migrations[migrations.length - 1]?.version ?? 0;
  if (current > latest) {
    throw Object.assign(new Error(`store schema ${current} is newer than this agent understands (${latest}); refusing to touch it`), { code: SCHEMA_NEWER });
  }
  for (const m of migrations) {
    if (m.version <= current) continue;
    await q.exec('BEGIN IMMEDIATE');
    try {
      await q.exec(m.sql);
      await q.exec(`PRAGMA user_version = ${m.version}`);
      await q.exec('COMMIT');
    } catch (e) {
      await q.exec('ROLLBACK').catch(() => undefined);
      throw e;
    }
    current = m.version;
  }
  return current;
}
