import { readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { main } from '../scripts/signagectl/cli.js';
import { brokerTool } from './helpers/prod-broker.js';
import { tempDir } from './helpers/tmp.js';

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
