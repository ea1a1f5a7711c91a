import type { Database, Query } from './db.js';

// Numbered migrations, one list for both engines: migration i (1-based) takes an archive from
// schema i-1 to i, in one transaction with its record. Each has a SQLite and a PostgreSQL text, the
// same tables, columns and keys; only types differ where the dialects do (SQLite's INTEGER is 64-bit,
// pg's is 32: BIGINT for seqs, counts and sessions; an identity column for SQLite's rowid alias).
// Timestamps are ISO-8601 TEXT in both, so comparisons and the report's SQL read the same; pg's
// text columns are COLLATE "C", byte order like SQLite's BINARY, whatever the server's locale.
// The version: a `schema_migrations` table in each (one row per applied migration); SQLite also keeps
// `user_version`, which archives made before the table relied on (the table is backfilled from it).
// An archive newer than this code is refused.

export interface Migration {
  sqlite: string;
  postgres: string;
}

export const MIGRATIONS: readonly Migration[] = [
  // 1: devices, plays (idempotent by eventId), events, stores and seq gaps, store changes, per-day compliance, groups
  {
    sqlite: `
  CREATE TABLE devices (
    device_id      TEXT PRIMARY KEY,
    first_seen_at  TEXT NOT NULL,
    store_id       TEXT,
    status_json    TEXT,
    status_online  INTEGER,
    status_session INTEGER,
    status_at      TEXT,
    heartbeat_json TEXT,
    heartbeat_at   TEXT,
    last_play_at   TEXT
  );
  CREATE TABLE plays (
    event_id    TEXT PRIMARY KEY,
    device_id   TEXT NOT NULL,
    store_id    TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    campaign_id TEXT NOT NULL,
    day         TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    ended_at    TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    outcome     TEXT NOT NULL,
    in_window   INTEGER NOT NULL,
    played      INTEGER NOT NULL,
    target      INTEGER NOT NULL,
    payload     TEXT NOT NULL,
    received_at TEXT NOT NULL,
    ingest_id   TEXT NOT NULL
  );
  CREATE INDEX plays_day ON plays (day, device_id, campaign_id);
  CREATE TABLE events (
    device_id   TEXT NOT NULL,
    digest      TEXT NOT NULL,
    ts          TEXT NOT NULL,
    type        TEXT NOT NULL,
    detail      TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (device_id, digest)
  );
  CREATE INDEX events_type ON events (type, ts);
  CREATE TABLE stores (
    device_id     TEXT NOT NULL,
    store_id      TEXT NOT NULL,
    first_seen_at TEXT NOT NULL,
    max_seq       INTEGER,
    PRIMARY KEY (device_id, store_id)
  );
  CREATE TABLE seq_gaps (
    device_id   TEXT NOT NULL,
    store_id    TEXT NOT NULL,
    lo          INTEGER NOT NULL,
    hi          INTEGER NOT NULL,
    detected_at TEXT NOT NULL,
    PRIMARY KEY (device_id, store_id, lo)
  );
  CREATE TABLE store_changes (
    id                INTEGER PRIMARY KEY,
    device_id         TEXT NOT NULL,
    previous_store_id TEXT NOT NULL,
    store_id          TEXT NOT NULL,
    source            TEXT NOT NULL,
    seen_at           TEXT NOT NULL
  );
  CREATE TABLE compliance (
    device_id   TEXT NOT NULL,
    day         TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    played      INTEGER NOT NULL,
    target      INTEGER NOT NULL,
    on_track    INTEGER,
    as_of       TEXT NOT NULL,
    PRIMARY KEY (device_id, day, campaign_id)
  );
  CREATE TABLE device_groups (
    group_name TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    PRIMARY KEY (group_name, device_id)
  );
  `,
    postgres: `
  CREATE TABLE devices (
    device_id      TEXT COLLATE "C" PRIMARY KEY,
    first_seen_at  TEXT COLLATE "C" NOT NULL,
    store_id       TEXT COLLATE "C",
    status_json    TEXT COLLATE "C",
    status_online  INTEGER,
    status_session BIGINT,
    status_at      TEXT COLLATE "C",
    heartbeat_json TEXT COLLATE "C",
    heartbeat_at   TEXT COLLATE "C",
    last_play_at   TEXT COLLATE "C"
  );
  CREATE TABLE plays (
    event_id    TEXT COLLATE "C" PRIMARY KEY,
    device_id   TEXT COLLATE "C" NOT NULL,
    store_id    TEXT COLLATE "C" NOT NULL,
    seq         BIGINT NOT NULL,
    campaign_id TEXT COLLATE "C" NOT NULL,
    day         TEXT COLLATE "C" NOT NULL,
    started_at  TEXT COLLATE "C" NOT NULL,
    ended_at    TEXT COLLATE "C" NOT NULL,
    duration_ms BIGINT NOT NULL,
    outcome     TEXT COLLATE "C" NOT NULL,
    in_window   INTEGER NOT NULL,
    played      BIGINT NOT NULL,
    target      BIGINT NOT NULL,
    payload     TEXT COLLATE "C" NOT NULL,
    received_at TEXT COLLATE "C" NOT NULL,
    ingest_id   TEXT COLLATE "C" NOT NULL
  );
  CREATE INDEX plays_day ON plays (day, device_id, campaign_id);
  CREATE TABLE events (
    device_id   TEXT COLLATE "C" NOT NULL,
    digest      TEXT COLLATE "C" NOT NULL,
    ts          TEXT COLLATE "C" NOT NULL,
    type        TEXT COLLATE "C" NOT NULL,
    detail      TEXT COLLATE "C" NOT NULL,
    received_at TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (device_id, digest)
  );
  CREATE INDEX events_type ON events (type, ts);
  CREATE TABLE stores (
    device_id     TEXT COLLATE "C" NOT NULL,
    store_id      TEXT COLLATE "C" NOT NULL,
    first_seen_at TEXT COLLATE "C" NOT NULL,
    max_seq       BIGINT,
    PRIMARY KEY (device_id, store_id)
  );
  CREATE TABLE seq_gaps (
    device_id   TEXT COLLATE "C" NOT NULL,
    store_id    TEXT COLLATE "C" NOT NULL,
    lo          BIGINT NOT NULL,
    hi          BIGINT NOT NULL,
    detected_at TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (device_id, store_id, lo)
  );
  CREATE TABLE store_changes (
    id                BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    device_id         TEXT COLLATE "C" NOT NULL,
    previous_store_id TEXT COLLATE "C" NOT NULL,
    store_id          TEXT COLLATE "C" NOT NULL,
    source            TEXT COLLATE "C" NOT NULL,
    seen_at           TEXT COLLATE "C" NOT NULL
  );
  CREATE TABLE compliance (
    device_id   TEXT COLLATE "C" NOT NULL,
    day         TEXT COLLATE "C" NOT NULL,
    campaign_id TEXT COLLATE "C" NOT NULL,
    played      BIGINT NOT NULL,
    target      BIGINT NOT NULL,
    on_track    INTEGER,
    as_of       TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (device_id, day, campaign_id)
  );
  CREATE TABLE device_groups (
    group_name TEXT COLLATE "C" NOT NULL,
    device_id  TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (group_name, device_id)
  );
  `,
  },
];

/** Any constant: the advisory lock two pg ingest processes starting at once take around migrating. */
const MIGRATE_LOCK = 7_265_801;

/** The archive's schema version (0: not an archive yet). Read-only: the report's check. */
export async function schemaVersion(q: Query): Promise<number> {
  if (q.dialect === 'sqlite') return (await q.get<{ user_version: number }>('PRAGMA user_version'))?.user_version ?? 0;
  const t = await q.get<{ t: string | null }>("SELECT to_regclass('schema_migrations')::text AS t");
  if (!t?.t) return 0;
  return (await q.get<{ v: number | null }>('SELECT MAX(version) AS v FROM schema_migrations'))?.v ?? 0;
}

/** Brings the archive to the latest schema; running it again changes nothing. Returns the version. */
export async function migrate(db: Database): Promise<number> {
  return db.tx(async (q) => {
    // pg: without it, two processes starting together would both find version 0 and both CREATE.
    // SQLite needs nothing: BEGIN IMMEDIATE already holds the file's write lock.
    if (q.dialect === 'postgres') await q.get(`SELECT pg_advisory_xact_lock(${MIGRATE_LOCK})`);
    await q.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
    const at = new Date().toISOString();
    const version = await schemaVersion(q);
    if (version > MIGRATIONS.length) throw new Error(`archive schema ${version} is newer than this signage-fleet (${MIGRATIONS.length}); refusing to touch it`);
    // An archive from before the table: its user_version says what it has.
    for (let v = 1; v <= version; v++) await q.run('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?) ON CONFLICT DO NOTHING', [v, at]);
    for (let v = version; v < MIGRATIONS.length; v++) {
      await q.exec(MIGRATIONS[v]![q.dialect]);
      await q.run('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)', [v + 1, at]);
      if (q.dialect === 'sqlite') await q.exec(`PRAGMA user_version = ${v + 1}`);
    }
    return MIGRATIONS.length;
  });
}
