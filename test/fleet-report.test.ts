// The compliance report off a real archive: one screen met its target, one is behind, one was
// silent all day (a row with played 0 and its last known target, not a gap); per group, the share.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { deviceTopic, encode, heartbeat } from '../agent/protocol/index.js';
import { compliance } from '../fleet/report/report.js';
import { FLEET_BIN, fleetStage, plays, publishPlays } from './helpers/fleet-rig.js';
import { waitFor } from './helpers/wait.js';

const run = promisify(execFile);
const D = '2026-12-05';
const PREV = '2026-12-04';

t.test('report: compliant, behind, offline all day; per group share; CSV, JSON and the command line', async (t) => {
  const groups = { 'district-1': ['ok-1', 'behind-1', 'off-1'], 'district-2': ['ok-1'] };
  const { fleet, screen, dir } = await fleetStage(t, 'ingest-r', { groups });
  const hb = async (id: string, day: string, played: number, target: number): Promise<void> => {
    const at = Date.parse(`${day}T10:00:00Z`);
    const msg = heartbeat({ now: at, deviceId: id, bootedAt: at - 3600_000, backlog: 0, fields: { compliance: [{ campaignId: 'spot', day, played, target, onTrack: played >= target }] } });
    await screen.publishAsync(deviceTopic('signage', id, 'heartbeat'), encode('heartbeat', msg), { qos: 0 });
  };
  // The day before: all three planned 3 and played 3.
  for (const id of ['ok-1', 'behind-1', 'off-1']) {
    await publishPlays(screen, plays(id, `${id}-store`, [1, 2, 3], { day: PREV, target: 3 }));
    await hb(id, PREV, 3, 3);
  }
  // The day: ok-1 plays 3 of 3; behind-1 one completed and one interrupted of 3; off-1 says nothing.
  await publishPlays(screen, plays('ok-1', 'ok-1-store', [4, 5, 6], { day: D, target: 3 }));
  await publishPlays(screen, plays('behind-1', 'behind-1-store', [4], { day: D, target: 3 }));
  await publishPlays(screen, plays('behind-1', 'behind-1-store', [5], { day: D, target: 3, outcome: 'interrupted' }));
  await hb('ok-1', D, 3, 3);
  await hb('behind-1', D, 1, 3);
  await waitFor('archived', async () => fleet.batcher.totals.plays >= 14 && (await fleet.archive.read((q) => q.all('SELECT 1 FROM compliance'))).length >= 5, 20_000);

  const r = await fleet.archive.read((q) => compliance(q, { from: D, to: D }));
  t.same(r.rows.map((x) => [x.deviceId, x.campaignId, x.played, x.target, x.met, x.source]), [
    ['behind-1', 'spot', 1, 3, false, 'reported'],
    ['off-1', 'spot', 0, 3, false, 'last-known'],
    ['ok-1', 'spot', 3, 3, true, 'reported'],
  ], 'one row per screen and campaign; the interrupted play does not count; the silent screen is a row');
  const share = (g: string): unknown => r.groups.find((x) => x.group === g && x.day === D);
  t.match(share('district-1'), { screens: 3, met: 1, share: 0.333 }, 'district-1: 1 of 3 met');
  t.match(share('district-2'), { screens: 1, met: 1, share: 1 }, 'district-2: 1 of 1');
  t.match(share('all'), { screens: 3, met: 1 });

  const two = await fleet.archive.read((q) => compliance(q, { from: PREV, to: D, group: 'district-2' }));
  t.same(two.rows.map((x) => [x.day, x.deviceId, x.played, x.met]), [[PREV, 'ok-1', 3, true], [D, 'ok-1', 3, true]], '--group and a two-day range');
  t.same(two.groups.map((g) => g.group), ['district-2', 'district-2'], 'only the asked group');
  const none = await fleet.archive.read((q) => compliance(q, { from: D, to: D, campaign: 'other' }));
  t.same(none.rows, [], '--campaign filters');

  const db = `${dir}/archive.db`;
  const csv = (await run(process.execPath, [FLEET_BIN, 'report', '--db', db, '--from', D, '--to', D, '--csv'])).stdout;
  const [screens, byGroup] = csv.trim().split('\n\n');
  t.same(screens?.split('\n'), [
    'day,deviceId,groups,campaignId,played,target,met,reported,source',
    `${D},behind-1,district-1,spot,1,3,false,1,reported`,
    `${D},off-1,district-1,spot,0,3,false,0,last-known`,
    `${D},ok-1,district-1 district-2,spot,3,3,true,3,reported`,
  ], 'CSV: the screens');
  t.match(byGroup, `${D},district-1,spot,3,1,0.333`, 'CSV: the groups');
  const json = JSON.parse((await run(process.execPath, [FLEET_BIN, 'report', '--db', db, '--from', D, '--to', D, '--json'])).stdout) as { rows: unknown[] };
  t.equal(json.rows.length, 3, 'JSON');
  const text = (await run(process.execPath, [FLEET_BIN, 'report', '--db', db, '--from', D, '--to', D])).stdout;
  t.match(text, /off-1\s+spot\s+0\/3\s+NO\s+silent all day/, 'text table');
  const bad = await run(process.execPath, [FLEET_BIN, 'report', '--db', db, '--from', 'yesterday']).catch((e: { code: number; stderr: string }) => e);
  t.equal((bad as { code: number }).code, 2, 'bad usage: exit 2');
  t.match((bad as { stderr: string }).stderr, '--from YYYY-MM-DD');
});
