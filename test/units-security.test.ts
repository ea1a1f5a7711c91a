import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';

// The agent unit's sandbox as systemd itself scores it (issue 10, item 7): exposure 0 (locked
// down) to 10 (unsafe). A property of the unit file, not of the machine: --offline=yes reads
// the file without a running systemd.

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..');
const UNITS = ['systemd/signage-agent.service', 'systemd/signage-agent-firstboot.service', 'provisioning/card/signage-install.service'];

async function exposure(unit: string): Promise<number> {
  // security exits non-zero above its threshold; the score is in stdout either way.
  const r = await run('systemd-analyze', ['security', '--offline=yes', path.join(root, unit)]).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }));
  const m = /Overall exposure level for \S+: (\d+(?:\.\d+)?)/.exec(r.stdout);
  if (!m) throw new Error(`no exposure score for ${unit}:\n${r.stdout}`);
  return Number(m[1]);
}

t.test('systemd-analyze security scores', async (t) => {
  const scores = new Map<string, number>();
  for (const u of UNITS) scores.set(u, await exposure(u));
  t.comment([...scores].map(([u, s]) => `${u}: ${s.toFixed(1)}`).join('\n'));
  t.ok(scores.get('systemd/signage-agent.service')! <= 3.0, `the agent unit scores ${scores.get('systemd/signage-agent.service')} (goal: at most 3.0)`);
});
