import { chmodSync, existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { main } from '../scripts/signagectl/cli.js';
import { brokerTool, connect, issued, startProdBroker } from './helpers/prod-broker.js';
import { tempDir } from './helpers/tmp.js';
import { waitedFor } from './helpers/wait.js';

// signagectl broker's files: one device changed or revoked leaves every other device's lines
// as they were; names that would be MQTT wildcards or another role's are refused.

async function ctl(...argv: string[]): Promise<{ code: number; out: string }> {
  const out: string[] = [];
  const code = await main(['broker', ...argv], { out: (l) => out.push(l), err: (l) => out.push(l), isTTY: false });
  return { code, out: out.join('\n') };
}

const lines = (f: string): string[] => readFileSync(f, 'utf8').split('\n').filter(Boolean);

t.test('revoking one device touches no other device', async (t) => {
  const dir = tempDir(t, 'broker-tool-');
  await brokerTool(dir, 'init-ca', '--no-reload');
  for (const id of ['d1', 'd2', 'd3']) await brokerTool(dir, 'add-device', '--id', id, '--groups', `g-${id}`, '--no-reload');
  await brokerTool(dir, 'add-device', '--id', 'c1', '--groups', 'g-c', '--cert', '--no-reload');
  await brokerTool(dir, 'add-device', '--id', 'c2', '--groups', 'g-c', '--cert', '--no-reload');
  const passwd = path.join(dir, 'passwd');
  const before = lines(passwd);
  const aclBefore = readFileSync(path.join(dir, 'acl'), 'utf8');

  await brokerTool(dir, 'revoke-device', '--id', 'd2', '--no-reload');
  await brokerTool(dir, 'revoke-device', '--id', 'c1', '--no-reload');
  t.same(lines(passwd), before.filter((l) => !l.startsWith('d2:')), 'only d2\'s password line is gone; the others are byte for byte the same');
  const acl = readFileSync(path.join(dir, 'acl'), 'utf8');
  t.match(acl, /^user d2\ntopic deny #$/m);
  t.match(acl, /^user c1\ntopic deny #$/m);
  const block = (text: string, user: string): string => new RegExp(`^user ${user}\\n(?:topic .*\\n)*`, 'm').exec(text)?.[0] ?? '';
  for (const u of ['d1', 'd3', 'c2']) t.equal(block(acl, u), block(aclBefore, u), `${u}'s ACL block unchanged`);
  const index = lines(path.join(dir, 'ca', 'index.txt'));
  t.ok(index.some((l) => l.startsWith('R\t') && l.endsWith('/CN=c1')), 'c1 revoked in the CA');
  t.ok(index.some((l) => l.startsWith('V\t') && l.endsWith('/CN=c2')), 'c2 still valid');

  // Re-issuing a certificate device revokes the certificate it held.
  await brokerTool(dir, 'add-device', '--id', 'c2', '--groups', 'g-c', '--cert', '--no-reload');
  const c2 = lines(path.join(dir, 'ca', 'index.txt')).filter((l) => l.endsWith('/CN=c2')).map((l) => l[0]);
  t.same(c2, ['R', 'V'], 'one revoked, one valid');
});

t.test('refused: wildcard or odd names, a device named like an operator, a second CA', async (t) => {
  const dir = tempDir(t, 'broker-tool-');
  await brokerTool(dir, 'init-ca', '--no-reload');
  await brokerTool(dir, 'add-operator', '--name', 'noc', '--role', 'noc', '--no-reload');
  for (const bad of ['a/+', '#', 'x y', 'dev/1', '']) {
    t.equal((await ctl('add-device', '--id', bad, '--dir', dir, '--no-reload')).code, 2, `--id "${bad}"`);
  }
  t.equal((await ctl('add-device', '--id', 'ok', '--groups', 'a,b/#', '--dir', dir, '--no-reload')).code, 2, 'group with a wildcard');
  t.equal((await ctl('add-device', '--id', 'noc', '--dir', dir, '--no-reload')).code, 2, 'a device cannot take the NOC\'s name');
  t.equal((await ctl('add-operator', '--name', 'x', '--role', 'root', '--dir', dir, '--no-reload')).code, 2);
  const again = await ctl('init-ca', '--dir', dir, '--no-reload');
  t.equal(again.code, 1);
  t.match(again.out, /exists/);
  t.equal((await ctl('--help')).code, 0);
  t.equal((await ctl('frobnicate', '--dir', dir)).code, 2);
});

t.test('mosquitto running as its own user reads every file the tool writes, after each reload too', { skip: process.getuid?.() !== 0 || !readFileSync('/etc/group', 'utf8').includes('\nmosquitto:') ? 'needs root and a mosquitto group' : false }, async (t) => {
  const parent = tempDir(t, 'broker-user-');
  chmodSync(parent, 0o711); // the temp dir stands in for /etc/mosquitto: traversable
  const dir = path.join(parent, 'signage');
  await brokerTool(dir, 'init-ca', '--server-name', '127.0.0.1', '--no-reload');
  t.equal(statSync(dir).mode & 0o7777, 0o2750, 'state folder setgid, group-readable');
  await brokerTool(dir, 'add-device', '--id', 'p1', '--no-reload');
  await brokerTool(dir, 'add-device', '--id', 'k1', '--cert', '--no-reload');
  const broker = await startProdBroker(t, dir, { asBrokerUser: true });
  const ca = readFileSync(path.join(dir, 'ca', 'ca.crt'), 'utf8');
  await connect(t, broker.passUrl, { ...issued(dir, 'p1'), ca, clientId: 'a' });
  // Rewrites passwd, acl and the CRL, then SIGHUP: mosquitto rereads them as user mosquitto.
  await brokerTool(dir, 'add-device', '--id', 'p2', '--pid', String(broker.pid));
  await brokerTool(dir, 'revoke-device', '--id', 'p1', '--pid', String(broker.pid));
  const ok = await waitedFor('p2 connects', () => connect(t, broker.passUrl, { ...issued(dir, 'p2'), ca, clientId: 'b' }).then(() => true, () => false), 15_000, 50);
  t.ok(ok, 'a device added after start connects: the new password file was read');
  await connect(t, broker.certUrl, { ...issued(dir, 'k1'), ca, clientId: 'c' });
  t.pass('a certificate device connects after the CRL was rewritten');
  t.notMatch(broker.log(), /Unable to (open|load)|Permission denied|Error: |Warning: /, 'no file errors or ACL warnings in the broker log');
  t.notOk(existsSync(path.join(dir, 'issued', 'p1')), 'the revoked device\'s issued files are gone');
  t.equal(statSync(path.join(dir, 'ca', 'ca.key')).mode & 0o777, 0o600, 'the CA key stays root\'s');
  t.equal(statSync(path.join(dir, 'issued')).mode & 0o777, 0o700, 'issued credentials stay root\'s');
});
