import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { prepareCardCli } from '../scripts/prepare-card/cli.js';
import { brokerTool, connect, startProdBroker } from './helpers/prod-broker.js';
import { tempDir } from './helpers/tmp.js';

// prepare-card --issued: each card carries its own device's credentials from `signagectl
// broker add-device`, its config points at them, and they open the shipped broker.

function kit(t: Test): { dir: string; common: string[] } {
  const dir = tempDir(t, 'broker-card-');
  const bundle = path.join(dir, 'signage-agent-0.1.0.tgz');
  writeFileSync(bundle, 'a stand-in bundle');
  const node = path.join(dir, 'node-v20.99.0-linux-arm64.tar.xz');
  writeFileSync(node, 'a stand-in Node tarball');
  writeFileSync(path.join(dir, 'node.sha256'), `${createHash('sha256').update(readFileSync(node)).digest('hex')}  ${path.basename(node)}\n`);
  return { dir, common: ['--bundle', bundle, '--node-tarball', node] };
}

async function prep(argv: string[]): Promise<{ code: number; err: string[] }> {
  const err: string[] = [];
  const code = await prepareCardCli(argv, { out: () => undefined, err: (l) => err.push(l) });
  return { code, err };
}

t.test('each card gets its own password or certificate, and they connect', async (t) => {
  const k = kit(t);
  const state = path.join(k.dir, 'broker');
  await brokerTool(state, 'init-ca', '--server-name', '127.0.0.1', '--no-reload');
  await brokerTool(state, 'add-device', '--id', 'hn-0001', '--groups', 'all', '--no-reload');
  await brokerTool(state, 'add-device', '--id', 'hn-0002', '--groups', 'all', '--cert', '--no-reload');
  const broker = await startProdBroker(t, state);
  const issuedRoot = path.join(state, 'issued');

  for (const [id, url] of [['hn-0001', broker.passUrl], ['hn-0002', broker.certUrl]] as const) {
    const boot = path.join(k.dir, `boot-${id}`);
    mkdirSync(boot);
    writeFileSync(path.join(boot, 'cmdline.txt'), 'console=tty1 root=PARTUUID=1-02 rootwait\n');
    const config = path.join(k.dir, `${id}.json`);
    writeFileSync(config, JSON.stringify({ deviceId: id, groups: ['all'], mqtt: { url } }));
    const r = await prep(['--boot', boot, '--config', config, '--issued', issuedRoot, ...k.common]);
    t.equal(r.code, 0, r.err.join('\n'));
    const onCard = JSON.parse(readFileSync(path.join(boot, 'signage-agent.json'), 'utf8')) as { mqtt: Record<string, string> };
    const card = (n: string): string => readFileSync(path.join(boot, n), 'utf8');
    t.equal(card('signage-agent.ca.crt'), readFileSync(path.join(state, 'ca', 'ca.crt'), 'utf8'), 'the CA that signed the broker');
    t.equal(onCard.mqtt.caFile, '/etc/signage-agent/ca.crt');
    const opts = id === 'hn-0001'
      ? { username: onCard.mqtt.username, password: card('signage-agent.mqtt.pass').trim() }
      : { cert: card('signage-agent.client.crt'), key: card('signage-agent.client.key') };
    if (id === 'hn-0001') {
      t.equal(onCard.mqtt.username, id);
      t.equal(onCard.mqtt.passwordFile, '/etc/signage-agent/mqtt.pass');
      t.equal(card('signage-agent.mqtt.pass'), readFileSync(path.join(issuedRoot, id, 'mqtt.pass'), 'utf8'));
    } else {
      t.same([onCard.mqtt.certFile, onCard.mqtt.keyFile], ['/etc/signage-agent/client.crt', '/etc/signage-agent/client.key']);
      t.match(card('signage-agent.client.crt'), /BEGIN CERTIFICATE/);
    }
    const c = await connect(t, url, { ...opts, ca: card('signage-agent.ca.crt'), clientId: `signage-${id}` });
    await c.publishAsync(`signage/device/${id}/status`, '{"online":true}', { qos: 1 });
    t.pass(`${id} connects with what its card holds`);
  }
});

t.test('a device without issued credentials, or with another username, is refused', async (t) => {
  const k = kit(t);
  const state = path.join(k.dir, 'broker');
  await brokerTool(state, 'init-ca', '--no-reload');
  await brokerTool(state, 'add-device', '--id', 'hn-0001', '--no-reload');
  const boot = path.join(k.dir, 'boot');
  mkdirSync(boot);
  writeFileSync(path.join(boot, 'cmdline.txt'), 'console=tty1 rootwait\n');
  const config = path.join(k.dir, 'c.json');
  writeFileSync(config, JSON.stringify({ deviceId: 'hn-0009', mqtt: { url: 'mqtts://noc.example:8884' } }));
  const missing = await prep(['--boot', boot, '--config', config, '--issued', path.join(state, 'issued'), ...k.common]);
  t.equal(missing.code, 1);
  t.match(missing.err.join('\n'), /hn-0009: no credentials/);
  writeFileSync(config, JSON.stringify({ deviceId: 'hn-0001', mqtt: { url: 'mqtts://noc.example:8884', username: 'shared' } }));
  const other = await prep(['--boot', boot, '--config', config, '--issued', path.join(state, 'issued'), ...k.common]);
  t.equal(other.code, 1);
  t.match(other.err.join('\n'), /broker knows this device as hn-0001/);
});
