import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Archive } from '../../fleet/archive/archive.js';
import { silentLogger } from '../../fleet/log.js';
import { FleetMetrics } from '../../fleet/metrics/metrics.js';
import { PlayTotals, takeSnapshot } from '../../fleet/metrics/snapshot.js';

// What a /metrics scrape costs on a city-sized archive: 1,000 screens with a heartbeat and a plan
// each, and 1,000,000 plays over 100 days. FleetMetrics.render() on the first scrape of a UTC
// day (the settled days are counted) and after (recent days only), the part of it spent in the
// archive (what holds the ingest's SQLite connection), against the same-run baseline it avoids:
// a full GROUP BY of every play on each scrape.

const SCREENS = 1000;
const DAYS = 100;
const PER_DAY = 10;
const NOW = Date.parse('2026-12-05T10:00:00Z');

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

async function fill(archive: Archive): Promise<void> {
  const hb = (id: string): string => JSON.stringify({ ts: new Date(NOW - 20_000).toISOString(), deviceId: id, uptimeSec: 3600, backlog: 0, cpuTempC: 55, diskFreeMB: 3000,
    throttled: { raw: '0x0', underVoltageNow: false, freqCappedNow: false, throttledNow: false, softTempLimitNow: false, underVoltageOccurred: false, freqCappedOccurred: false, throttledOccurred: false, softTempLimitOccurred: false },
    player: { state: 'playing', campaignId: null, url: null } });
  await archive.read(async (q) => {
    await q.run('BEGIN');
    for (let d = 0; d < SCREENS; d++) {
      const id = `hn-${String(d).padStart(4, '0')}`;
      await q.run('INSERT INTO devices (device_id, first_seen_at, store_id, status_online, status_session, heartbeat_json, heartbeat_at) VALUES (?, ?, ?, 1, 1, ?, ?)',
        [id, '2026-08-27T00:00:00.000Z', 's', hb(id), new Date(NOW - 20_000).toISOString()]);
      await q.run('INSERT INTO compliance (device_id, day, campaign_id, played, target, on_track, as_of) VALUES (?, ?, ?, 5, 10, 1, ?)', [id, '2026-12-05', 'spot', new Date(NOW).toISOString()]);
    }
    // The plays in one statement (SQLite's recursive CTE: this is a fixture, not the archive's SQL).
    await q.run(
      `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
       INSERT INTO plays (event_id, device_id, store_id, seq, campaign_id, day, started_at, ended_at, duration_ms, outcome, in_window, played, target, payload, received_at, ingest_id)
       SELECT 'hn-' || printf('%04d', i / ?) || ':s:' || (i % ?), 'hn-' || printf('%04d', i / ?), 's', i % ?, 'spot',
              date(?, '-' || ((i % ?) / ?) || ' days'), 'x', 'x', 30000, CASE WHEN i % 50 = 0 THEN 'interrupted' ELSE 'completed' END, 1, 1, 10, '{}', 'x', 'bench'
       FROM n`,
      [SCREENS * DAYS * PER_DAY - 1, DAYS * PER_DAY, DAYS * PER_DAY, DAYS * PER_DAY, DAYS * PER_DAY, '2026-12-05', DAYS * PER_DAY, PER_DAY],
    );
    await q.run('COMMIT');
  });
}

export async function bench(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-fleet-metrics-'));
  const archive = new Archive(path.join(dir, 'archive.db'), silentLogger());
  try {
    await archive.start();
    const fillMs = await time(() => fill(archive));
    const plays = (await archive.read((q) => q.get<{ n: number }>('SELECT COUNT(*) AS n FROM plays')))?.n ?? 0;
    console.log(`fleet-metrics: /metrics on ${SCREENS} screens, ${plays.toLocaleString('en')} plays over ${DAYS} days (archive filled in ${(fillMs / 1000).toFixed(1)} s)`);

    const metrics = new FleetMetrics(archive, { now: () => NOW });
    let text = '';
    const first = await time(async () => { text = await metrics.render(); });
    const later: number[] = [];
    for (let i = 0; i < 5; i++) later.push(await time(() => metrics.render()));

    const totals = new PlayTotals();
    const o = { now: NOW, staleAfterSec: 120, suspectWindowSec: 3600 };
    const snapFirst = await time(() => archive.read((q) => takeSnapshot(q, o, totals)));
    const snapLater: number[] = [];
    for (let i = 0; i < 5; i++) snapLater.push(await time(() => archive.read((q) => takeSnapshot(q, o, totals))));
    const fullScan: number[] = [];
    for (let i = 0; i < 3; i++) fullScan.push(await time(() => archive.read((q) => q.all('SELECT device_id, outcome, COUNT(*) AS n FROM plays GROUP BY device_id, outcome'))));

    const series = text.split('\n').filter((l) => l.startsWith('signage_')).length;
    const rows: [string, number][] = [
      ['render(), first scrape of a UTC day', first],
      ['render(), later scrapes (median of 5)', median(later)],
      ['  of which in the archive, first', snapFirst],
      ['  of which in the archive, later (median of 5)', median(snapLater)],
      ['baseline: full GROUP BY of every play (median of 3)', median(fullScan)],
    ];
    for (const [what, ms] of rows) console.log(`  ${what.padEnd(52)} ${ms.toFixed(0).padStart(6)} ms`);
    console.log(`  ${series.toLocaleString('en')} signage series, ${(text.length / 1e6).toFixed(2)} MB of text`);
  } finally {
    await archive.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
