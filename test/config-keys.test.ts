import t from 'tap';
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, parseConfig } from '../agent/config/config.js';
import { silentLogger } from '../agent/core/log.js';
import { keyIdOf } from '../agent/protocol/envelope.js';
import { importBootConfig } from '../agent/provision/firstboot.js';
import { tempDir } from './helpers/tmp.js';

// security.assignmentKeys is read by the config schema: a bad key is a config problem like any
// other, reported with the rest by every path that reads a config (run, plan, doctor, simulate
// and the first-boot import), not found later by the link alone.

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const raw = (generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' }) as Buffer).subarray(12);
const pem = generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }) as string;
const RSA_PEM = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'pem', type: 'spki' }) as string;

/** Two bad keys between two good ones, and one problem elsewhere: all three must be named. */
const BAD = {
  deviceId: 'keys-1',
  heartbeatSec: 1,
  mqtt: { url: 'mqtt://127.0.0.1:1' },
  security: { assignmentKeys: [raw.toString('base64'), 'AAAA', `ops:${pem}`, RSA_PEM] },
};
const EXPECTED = ['heartbeatSec', 'security.assignmentKeys.1', 'security.assignmentKeys.3'];

function cli(file: string, args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [file, ...args], { timeout: 60_000 }, (err, _stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr });
    });
  });
}

t.test('parseConfig: good keys become the ring, bad ones are problems with the others', async (t) => {
  const dir = tempDir(t);
  const good = parseConfig({ ...BAD, heartbeatSec: 30, security: { assignmentKeys: [raw.toString('base64'), `ops:${pem}`] } }, path.join(dir, 'c.json'));
  t.same([...(good.security.assignmentKeys?.keys() ?? [])].sort(), [keyIdOf(raw), 'ops'].sort(), 'the ring holds both keys by id');
  t.equal(parseConfig({ deviceId: 'keys-1', mqtt: { url: 'mqtt://x' } }, path.join(dir, 'c.json')).security.assignmentKeys, undefined, 'no section: plain JSON mode');
  t.equal(parseConfig({ deviceId: 'keys-1', mqtt: { url: 'mqtt://x' }, security: {} }, path.join(dir, 'c.json')).security.assignmentKeys, undefined, 'no keys: plain JSON mode');
  const problems = t.throws(() => parseConfig(BAD, path.join(dir, 'c.json'))) as ConfigError;
  t.ok(problems instanceof ConfigError, 'a ConfigError');
  for (const key of EXPECTED) t.ok(problems.problems.some((p) => p.startsWith(`${key}:`)), `names ${key}`);
  t.match(problems.problems.find((p) => p.startsWith('security.assignmentKeys.3:')), /must be ed25519/, 'the RSA key is named for its type');
  t.equal(problems.problems.length, EXPECTED.length, 'the good keys are not reported');
});

t.test('run, plan, doctor and simulate: exit 2 naming every problem, the bad keys among them', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'signage-agent.json');
  writeFileSync(file, JSON.stringify(BAD));
  const bin = path.join(root, 'dist/agent/main.js');
  for (const cmd of [['run'], ['plan'], ['doctor'], ['simulate', '--assignment', path.join(root, 'test/fixtures/directive.json'), '--from', '2024-08-10', '--days', '1']]) {
    const r = await cli(bin, [...cmd, '--config', file]);
    t.equal(r.code, 2, `${cmd[0]} exits 2`);
    const lines = r.stderr.trim().split('\n');
    for (const key of EXPECTED) t.ok(lines.some((l) => l.startsWith(`config: ${key}:`)), `${cmd[0]} names ${key}`);
    t.equal(lines.length, EXPECTED.length, `${cmd[0]}: one line per problem, nothing else`);
  }
  t.notOk(existsSync(path.join(dir, 'var')), 'no command got as far as its data directory');
});

t.test('first-boot import: the file is rejected naming every problem, the bad keys among them', async (t) => {
  const dir = tempDir(t, 'firstboot-keys-');
  const boot = path.join(dir, 'boot');
  const etc = path.join(dir, 'etc', 'signage-agent');
  mkdirSync(boot);
  writeFileSync(path.join(boot, 'signage-agent.json'), JSON.stringify(BAD));
  const r = await importBootConfig({ bootDirs: [boot], etcDir: etc, log: silentLogger() });
  t.equal(r.status, 'rejected');
  if (r.status !== 'rejected') return;
  for (const key of EXPECTED) t.ok(r.problems.some((p) => p.startsWith(`${key}:`)), `names ${key}`);
  t.notOk(existsSync(path.join(etc, 'signage-agent.json')), 'nothing installed');

  // The unit's entry point, as the box runs it.
  writeFileSync(path.join(boot, 'signage-agent.json'), JSON.stringify(BAD));
  const s = await cli(path.join(root, 'dist/scripts/firstboot-import.js'), ['--boot', boot, '--etc', etc, '--no-card', '--user', 'no-such-user-here']);
  t.equal(s.code, 1, 'firstboot-import exits 1');
  const card = readFileSync(path.join(boot, 'signage-agent-error.txt'), 'utf8');
  for (const key of EXPECTED) t.match(card, `${key}:`, `the error file names ${key}`);
  t.notOk(existsSync(path.join(etc, 'signage-agent.json')), 'still nothing installed');
});
