import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import { startBroker } from './helpers/mosquitto.js';
import { makeConfig, makeLink, openStore, tempDir } from './helpers/link-rig.js';
import { waitFor } from './helpers/wait.js';

// Credentials and TLS as configured (PROTOCOL §2): username + passwordFile, caFile, and a client
// certificate, against a mosquitto that requires all of them.

function pki(dir: string): void {
  const ssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=test-ca', '-keyout', 'ca.key', '-out', 'ca.crt');
  writeFileSync(path.join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  for (const who of ['server', 'client']) {
    ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${who === 'server' ? '127.0.0.1' : 'dev-1'}`, '-keyout', `${who}.key`, '-out', `${who}.csr`);
    ssl('x509', '-req', '-in', `${who}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'san.ext', '-out', `${who}.crt`);
  }
  execFileSync('mosquitto_passwd', ['-b', '-c', path.join(dir, 'passwd'), 'dev-1', 's3cret'], { stdio: 'ignore' });
}

t.test('TLS with a client certificate, username and password file', async (t) => {
  const dir = tempDir(t, 'link-tls-');
  pki(dir);
  const broker = await startBroker(t, [
    `cafile ${dir}/ca.crt`, `certfile ${dir}/server.crt`, `keyfile ${dir}/server.key`, 'require_certificate true',
    'allow_anonymous false', `password_file ${dir}/passwd`,
  ]);
  const url = `mqtts://127.0.0.1:${broker.port}`;
  writeFileSync(path.join(dir, 'mqtt.pass'), 's3cret\n');
  const tls = { username: 'dev-1', passwordFile: 'mqtt.pass', caFile: 'ca.crt', certFile: 'client.crt', keyFile: 'client.key' };

  // Wrong password first: refused, retried with backoff, never thrown.
  const storeA = await openStore(t, tempDir(t));
  writeFileSync(path.join(dir, 'wrong.pass'), 'nope\n');
  const lines: Array<{ msg: string }> = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  const bad = makeLink(t, makeConfig(dir, url, { mqtt: { url, ...tls, passwordFile: 'wrong.pass' } }), storeA, undefined, {}, log);
  await bad.start();
  // Each refused CONNECT surfaces as an mqtt error: two of them are the refusal and its retry.
  await waitFor('refused, then retried', () => lines.filter((l) => l.msg === 'mqtt error').length >= 2);
  t.equal(bad.connected(), false, 'refused with a wrong password, still running');
  t.ok(lines.some((l) => l.msg === 'mqtt: cannot connect, retrying'), 'says it cannot connect and retries');
  await bad.stop();

  const store = await openStore(t, dir);
  const link = makeLink(t, makeConfig(dir, url, { mqtt: { url, ...tls } }), store);
  await link.start();
  await waitFor('connected over TLS', () => link.connected());
  t.equal(link.currentSession(), 1);
});
