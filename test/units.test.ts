import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { tempDir } from './helpers/tmp.js';
import { AGENT_NODE_OPTIONS } from './helpers/agent-proc.js';

const run = promisify(execFile);
const UNITS = ['signage-agent.service', 'signage-agent-firstboot.service', 'signage-agent-update-gate.service', 'signage-agent-update-gate.timer'];
const unitDir = path.resolve(import.meta.dirname, '..', 'systemd');

function directives(text: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const x = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (x) m.set(x[1]!, [...(m.get(x[1]!) ?? []), x[2]!]);
  }
  return m;
}

t.test('systemd-analyze verify passes on every unit, with no warnings', async (t) => {
  // verify insists that ExecStart binaries exist: point them at stand-ins in a temp dir.
  const dir = tempDir(t, 'units-');
  mkdirSync(path.join(dir, 'bin'));
  for (const b of ['signage-agent', 'signage-firstboot', 'signage-update-gate']) {
    writeFileSync(path.join(dir, 'bin', b), '#!/bin/sh\n');
    chmodSync(path.join(dir, 'bin', b), 0o755);
  }
  const files = UNITS.map((u) => {
    const text = readFileSync(path.join(unitDir, u), 'utf8').replaceAll('/opt/signage-agent/bin', path.join(dir, 'bin'));
    const f = path.join(dir, u);
    writeFileSync(f, text);
    return f;
  });
  const r = await run('systemd-analyze', ['verify', ...files]).then(
    (x) => ({ code: 0, stderr: x.stderr }),
    (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
  );
  const ours = r.stderr.split('\n').filter((l) => l.includes(dir) || /signage-agent/.test(l));
  t.equal(r.code, 0, r.stderr);
  t.same(ours, [], 'no warnings about our units');
});

t.test('agent unit: notify, watchdog, restart forever, sandbox that keeps DRM and audio', async (t) => {
  const d = directives(readFileSync(path.join(unitDir, 'signage-agent.service'), 'utf8'));
  const one = (k: string): string | undefined => d.get(k)?.[0];
  t.equal(one('Type'), 'notify');
  t.equal(one('NotifyAccess'), 'main', 'the agent notifies from its own pid (notify.test.ts proves the pid)');
  t.equal(one('WatchdogSec'), '30');
  t.equal(one('Restart'), 'always');
  t.equal(one('StartLimitIntervalSec'), '0', 'never gives up');
  t.equal(one('User'), 'signage');
  t.same(one('SupplementaryGroups')?.split(/\s+/).sort(), ['audio', 'render', 'video']);
  t.match(one('Wants') ?? '', /time-sync\.target/);
  t.match(one('After') ?? '', /time-sync\.target/);
  t.notMatch(d.get('Requires')?.join(' ') ?? '', /network|time-sync/, 'no network never blocks the start');
  t.equal(one('ProtectSystem'), 'strict');
  t.equal(one('ReadWritePaths'), '/var/lib/signage-agent /opt/signage-agent/releases', 'its data, and the releases an update installs');
  t.equal(one('ExecStartPre'), '-/opt/signage-agent/bin/signage-update-gate start', 'the update health gate before every start');
  t.equal(one('NoNewPrivileges'), 'yes');
  t.notOk(d.has('PrivateDevices'), 'mpv needs /dev/dri');
  // A closed device policy that still lets mpv reach the display, audio, decoders and CEC.
  t.equal(one('DevicePolicy'), 'closed');
  for (const dev of ['char-drm rw', 'char-alsa rw', 'char-video4linux rw', 'char-cec rw']) t.ok(d.get('DeviceAllow')?.includes(dev), `DeviceAllow=${dev}`);
  t.same(d.get('InaccessiblePaths'), ['-/boot/firmware -/boot'], 'the boot partition (secrets) is hidden; "-": absent is fine');
  t.notOk(d.has('MemoryDenyWriteExecute'), 'Node JIT');
  t.equal(one('StandardOutput'), 'journal');
  t.equal(one('ExecStart'), '/opt/signage-agent/bin/signage-agent run --config /etc/signage-agent/signage-agent.json');
});

t.test('the agent unit runs Node with the options the tests run the agent with', async (t) => {
  const unit = readFileSync(path.join(unitDir, 'signage-agent.service'), 'utf8');
  t.match(unit, new RegExp(`^Environment="NODE_OPTIONS=${AGENT_NODE_OPTIONS}"$`, 'm'));
});
