import t from 'tap';
import { execFile } from 'node:child_process';
import { writeFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from './helpers/tmp.js';

// The CLI as operators and acceptance tests see it (PROTOCOL §1): the built bin, a child process.
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'dist/agent/main.js');
const fixtures = path.join(root, 'test/fixtures');

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

t.test('--version and --help', async (t) => {
  const v = await cli(['--version']);
  t.equal(v.code, 0);
  t.equal(v.stdout.trim(), (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version);
  const h = await cli(['--help']);
  t.equal(h.code, 0);
  t.match(h.stdout, /simulate --config PATH --assignment FILE --from D --days N/);
  for (const cmd of ['run', 'plan', 'simulate', 'doctor']) {
    const r = await cli([cmd, '--help']);
    t.equal(r.code, 0, `${cmd} --help`);
    t.match(r.stdout, new RegExp(`Usage: signage-agent ${cmd}`));
  }
  const u = await cli(['frobnicate']);
  t.equal(u.code, 2);
  t.match(u.stderr, /unknown command 'frobnicate'/);
});

t.test('a bad config exits 2 with one line per problem naming the key', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'bad.json');
  writeFileSync(file, JSON.stringify({ groups: ['ok', 'bad group!'], timezone: 'Mars/Olympus', heartbeatSec: -1, mqtt: { url: 'http://x' }, extra: 1 }));
  const r = await cli(['plan', '--config', file]);
  t.equal(r.code, 2);
  const lines = r.stderr.trim().split('\n');
  for (const key of ['deviceId', 'groups.1', 'timezone', 'heartbeatSec', 'mqtt.url']) {
    t.ok(lines.some((l) => l.startsWith(`config: ${key}:`)), `names ${key}`);
  }
  t.ok(lines.some((l) => /extra/.test(l)), 'unknown key reported');
  const nojson = path.join(dir, 'nojson.json');
  writeFileSync(nojson, '{ nope');
  const r2 = await cli(['plan', '--config', nojson]);
  t.equal(r2.code, 2);
  t.match(r2.stderr, /not valid JSON/);
  const r3 = await cli(['plan', '--config', path.join(dir, 'missing.json')]);
  t.equal(r3.code, 2);
  t.match(r3.stderr, /cannot read/);
  const r4 = await cli(['plan']);
  t.equal(r4.code, 2);
  t.match(r4.stderr, /--config PATH is required/);
});

t.test('simulate --json: the directive 10/10 inside its dates, nothing outside, also with a morning outage', async (t) => {
  const args = ['simulate', '--config', path.join(fixtures, 'device.json'), '--assignment', path.join(fixtures, 'directive.json'), '--from', '2024-08-10', '--days', '65', '--json'];
  for (const extra of [[], ['--outage', '06:00-09:00']]) {
    const r = await cli([...args, ...extra]);
    t.equal(r.code, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as Array<{ day: string; campaignId: string; played: number; target: number; onTrack: boolean }>;
    t.equal(rows.length, 57, `57 campaign-days ${extra.join(' ')}`);
    t.equal(rows[0]?.day, '2024-08-15');
    t.equal(rows[56]?.day, '2024-10-10');
    t.ok(rows.every((x) => x.campaignId === 'ihanoi-2024' && x.played === 10 && x.target === 10 && x.onTrack), 'every day 10/10');
    t.same(Object.keys(rows[0]!).sort(), ['campaignId', 'day', 'onTrack', 'played', 'target']);
  }
});

t.test('simulate: argument errors exit 2 with every problem', async (t) => {
  const r = await cli(['simulate', '--config', path.join(fixtures, 'device.json'), '--from', '2024-13-01', '--days', '0', '--outage', '7am']);
  t.equal(r.code, 2);
  t.match(r.stderr, /--assignment FILE is required/);
  t.match(r.stderr, /--from must be a date/);
  t.match(r.stderr, /--days must be/);
  t.match(r.stderr, /--outage 7am/);
  const dir = tempDir(t);
  const bad = path.join(dir, 'a.json');
  writeFileSync(bad, JSON.stringify({ version: 0, campaigns: [{ id: 'x y', media: { url: 'ftp://a', sha256: 'zz' }, timesPerDay: -1, windows: ['25:00-26:00'] }] }));
  const r2 = await cli(['simulate', '--config', path.join(fixtures, 'device.json'), '--assignment', bad, '--from', '2024-08-15', '--days', '1']);
  t.equal(r2.code, 2);
  for (const key of ['assignment.version', 'assignment.campaigns.0.id', 'assignment.campaigns.0.media.url', 'assignment.campaigns.0.media.sha256', 'assignment.campaigns.0.timesPerDay', 'assignment.campaigns.0.windows.0']) {
    t.match(r2.stderr, new RegExp(`^${key.replace(/\./g, '\\.')}:`, 'm'), `names ${key}`);
  }
});

t.test('plan: slots and timeline, --json for machines', async (t) => {
  const base = ['plan', '--config', path.join(fixtures, 'device.json'), '--assignment', path.join(fixtures, 'directive.json'), '--date', '2024-08-15'];
  const j = await cli([...base, '--json']);
  t.equal(j.code, 0, j.stderr);
  const p = JSON.parse(j.stdout) as { day: string; campaigns: Array<{ campaignId: string; target: number; slots: string[] }>; slots: Array<{ at: string }> };
  t.equal(p.day, '2024-08-15');
  t.equal(p.campaigns[0]?.target, 10);
  t.same(p.campaigns[0]?.slots.map((s) => s.slice(11, 19)), ['06:43:30', '07:10:30', '07:37:30', '08:04:30', '16:31:30', '16:58:30', '17:25:30', '17:52:30', '18:19:30', '18:46:30']);
  t.match(p.slots[0]?.at, /\+07:00$/, 'local times with offset');
  const txt = await cli(base);
  t.equal(txt.code, 0);
  t.match(txt.stdout, /ihanoi-2024/);
  t.match(txt.stdout, /06:43:30/);
  t.match(txt.stdout, /Timeline/);
  const outside = await cli([...base.slice(0, -1), '2024-10-11', '--json']);
  t.same((JSON.parse(outside.stdout) as { campaigns: unknown[] }).campaigns, [], 'nothing after endDate');
});

t.test('plan without --assignment reads what the agent applied, and counts today\'s plays', async (t) => {
  const { SqliteStore } = await import('../agent/store/sqlite-store.js');
  const { silentLogger } = await import('../agent/core/log.js');
  const dir = tempDir(t);
  const config = path.join(dir, 'c.json');
  writeFileSync(config, JSON.stringify({ deviceId: 'p-1', dataDir: path.join(dir, 'data'), mqtt: { url: 'mqtt://127.0.0.1:1' } }));
  const empty = await cli(['plan', '--config', config, '--json']);
  t.equal(empty.code, 0);
  t.same((JSON.parse(empty.stdout) as { campaigns: unknown[] }).campaigns, [], 'no store yet: nothing assigned');
  const store = new SqliteStore({ file: path.join(dir, 'data', 'agent.db'), log: silentLogger() });
  await store.start();
  const a = JSON.parse(readFileSync(path.join(fixtures, 'directive.json'), 'utf8'));
  await store.applyIfNewer('device', { kind: 'assignment', doc: { ...a, version: 1, campaigns: [{ ...a.campaigns[0], startDate: undefined, endDate: undefined }] } }, Date.now());
  await store.stop();
  const r = await cli(['plan', '--config', config, '--json', '--date', '2030-01-02']);
  t.equal(r.code, 0, r.stderr);
  const p = JSON.parse(r.stdout) as { campaigns: Array<{ campaignId: string; slots: string[] }> };
  t.equal(p.campaigns[0]?.campaignId, 'ihanoi-2024');
  t.equal(p.campaigns[0]?.slots.length, 10);
});

t.test('plan --date D plans D from its start with nothing played, even when D is today; without --date, today from now with the store\'s plays', async (t) => {
  const { SqliteStore } = await import('../agent/store/sqlite-store.js');
  const { silentLogger } = await import('../agent/core/log.js');
  const { Zone } = await import('../agent/schedule/zoned.js');
  const dir = tempDir(t);
  const config = path.join(dir, 'c.json');
  writeFileSync(config, JSON.stringify({ deviceId: 'p-2', dataDir: path.join(dir, 'data'), mqtt: { url: 'mqtt://127.0.0.1:1' } }));
  const zone = new Zone('Asia/Ho_Chi_Minh');
  const today = zone.localDateOf(Date.now());
  const store = new SqliteStore({ file: path.join(dir, 'data', 'agent.db'), log: silentLogger() });
  await store.start();
  // A whole-day campaign, 24 a day: one slot every hour at :30.
  const media = { url: 'file:///srv/x.mp4', sha256: 'c'.repeat(64), durationMs: 10_000 };
  await store.applyIfNewer('device', { kind: 'assignment', doc: { version: 1, campaigns: [{ id: 'hourly', media, timesPerDay: 24 }] } }, Date.now());
  const start = zone.dayBounds(today).start;
  for (let i = 0; i < 3; i++) {
    const id = await store.recordPlayStart({ campaignId: 'hourly', mediaSha256: media.sha256, day: today, scheduledAt: start + i * 1000, startedAt: start + i * 1000, inWindow: true, display: 'unknown', clockSynced: true });
    await store.recordPlayEnd(id, { endedAt: start + i * 1000 + 10_000, durationMs: 10_000, outcome: 'completed', target: 24 }, 'p-2');
  }
  await store.stop();
  type P = { day: string; campaigns: Array<{ played: number; slots: string[] }> };
  const dated = await cli(['plan', '--config', config, '--json', '--date', today]);
  t.equal(dated.code, 0, dated.stderr);
  const d = JSON.parse(dated.stdout) as P;
  t.equal(d.day, today);
  t.equal(d.campaigns[0]?.played, 0, '--date: nothing played (the ideal plan), not the store\'s 3');
  t.equal(d.campaigns[0]?.slots.length, 24, '--date: every slot of the day, from its start');
  t.match(d.campaigns[0]?.slots[0], new RegExp(`^${today}T00:30:00`), 'the first slot half a step into the day');
  const live = await cli(['plan', '--config', config, '--json']);
  t.equal(live.code, 0, live.stderr);
  t.equal((JSON.parse(live.stdout) as P).campaigns[0]?.played, 3, 'without --date: the plays the store has counted today');
});
