import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { silentLogger } from '../agent/core/log.js';
import { assignmentSchema } from '../agent/protocol/schemas.js';
import { powerAt } from '../agent/display/schedule.js';
import { simulate } from '../agent/sim/simulation.js';
import { Zone } from '../agent/schedule/zoned.js';
import { tempDir } from './helpers/tmp.js';

// `plan` and `simulate` with an assignment's display schedule (PROTOCOL §11): the operator sees
// standby and the levels on the timeline, and what standby costs the day's targets.

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'dist/agent/main.js');
const device = path.join(root, 'test/fixtures/device.json');
const zone = new Zone('Asia/Ho_Chi_Minh');

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const display = { power: [{ on: '06:00', off: '23:30' }], brightness: [{ from: '18:30', pct: 60 }, { from: '22:00', pct: 35 }] };
// The directive, its morning window widened to 05:00 so that standby (until 06:00) cuts into it.
const doc = {
  version: 1,
  campaigns: [{
    id: 'ihanoi-2024',
    media: { url: 'file:///srv/spots/ihanoi-30s.mp4', sha256: '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08', durationMs: 30000 },
    timesPerDay: 10,
    windows: ['05:00-08:30', '16:30-19:00'],
  }],
  display,
};

t.test('plan: standby and brightness on the timeline, no slot in standby', async (t) => {
  const file = path.join(tempDir(t), 'a.json');
  writeFileSync(file, JSON.stringify(doc));
  const r = await cli(['plan', '--config', device, '--assignment', file, '--date', '2024-08-15']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /display {2}standby 00:00:00-06:00:00 23:30:00-24:00:00 \(nothing plays then\)/);
  t.match(r.stdout, /brightness 100% 00:00:00-18:30:00, 60% 18:30:00-22:00:00, 35% 22:00:00-24:00:00/);
  t.match(r.stdout, /windows 06:00:00-08:30:00 16:30:00-19:00:00/, 'the window is cut at 06:00');
  const power = r.stdout.split('\n').find((l) => l.startsWith('power '));
  t.equal(power?.slice(12), `${'_'.repeat(18)}${'='.repeat(52)}/_`, 'power row: 20-min cells, on from 06:00, off from 23:30');
  const bright = r.stdout.split('\n').find((l) => l.startsWith('brightness '));
  t.equal(bright?.slice(12), `${'F'.repeat(56)}${'6'.repeat(10)}${'3'.repeat(6)}`);
  const j = await cli(['plan', '--config', device, '--assignment', file, '--date', '2024-08-15', '--json']);
  const p = JSON.parse(j.stdout) as { display: { standby: Array<{ start: string; end: string }>; brightness: Array<{ pct: number }> }; slots: Array<{ at: string }> };
  t.same(p.display.standby, [{ start: '2024-08-15T00:00:00.000+07:00', end: '2024-08-15T06:00:00.000+07:00' }, { start: '2024-08-15T23:30:00.000+07:00', end: '2024-08-16T00:00:00.000+07:00' }]);
  t.same(p.display.brightness.map((b) => b.pct), [100, 60, 35]);
  t.equal(p.slots.length, 10);
  t.ok(p.slots.every((s) => powerAt(display, zone, Date.parse(s.at)).on), 'every slot while the screen is on');
});

t.test('simulate: the display schedule from the assignment file; plays only while on, targets met', async (t) => {
  const file = path.join(tempDir(t), 'a.json');
  // On only 07:00-08:00 and 17:00-18:00: 2 h of window time for 10 plays of 30 s.
  const tight = { ...doc, display: { power: [{ on: '07:00', off: '08:00' }, { on: '17:00', off: '18:00' }] } };
  writeFileSync(file, JSON.stringify(tight));
  const r = await cli(['simulate', '--config', device, '--assignment', file, '--from', '2024-08-15', '--days', '3']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^display: power on 07:00-08:00, 17:00-18:00, standby outside \(no spot planned then\)$/m);
  t.match(r.stdout, /3 campaign-days, 3 on track, 0 short/);
  const res = await simulate({ deviceId: 'hn-hk-0001', timezone: zone.tz, groups: ['all'], assignment: assignmentSchema.parse(tight), from: '2024-08-15', days: 3, outages: [], log: silentLogger() });
  t.equal(res.plays.length, 30);
  t.ok(res.plays.every((p) => powerAt(tight.display, zone, p.scheduledAt).on && powerAt(tight.display, zone, p.scheduledAt + 29_999).on), 'every play starts and ends inside a power window');
  // Off all day on the campaign's windows: nothing can play, and the shortfall is reported.
  const dark = { ...doc, display: { power: [{ on: '10:00', off: '12:00' }] } };
  writeFileSync(file, JSON.stringify(dark));
  const d = await cli(['simulate', '--config', device, '--assignment', file, '--from', '2024-08-15', '--days', '1', '--json']);
  t.same(JSON.parse(d.stdout), [{ day: '2024-08-15', campaignId: 'ihanoi-2024', played: 0, target: 10, onTrack: false }], 'windows wholly in standby: 0/10, short');
});
