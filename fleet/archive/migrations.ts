import type { Db } from './db.js';

// Numbered migrations: migration i (1-based) takes the archive from user_version i-1 to i, in the
// same transaction as its user_version bump. An archive newer than this code is refused.

export const MIGRATIONS: readonly string[] = [
  // 1: devices, plays (idempotent by eventId), events, stores and seq gaps, store changes, per-day compliance, groups
  `
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
];

export async function migrate(db: Db): Promise<number> {
  return db.tx(async (q) => {
    const row = await q.get<{ user_version: number }>('PRAGMA user_version');
    const at = row?.user_version ?? 0;
    if (at > MIGRATIONS.length) throw new Error(`archive schema ${at} is newer than this signage-fleet (${MIGRATIONS.length}); refusing to touch it`);
    for (let v = at; v < MIGRATIONS.length; v++) {
      await q.exec(MIGRATIONS[v]!);
      await q.exec(`PRAGMA user_version = ${v + 1}`);
    }
    return MIGRATIONS.length;
  });
}
