// The NOC page's screenshot button against a screen in signed mode (§9): the command goes out as
// an envelope signed with `http.commandKeyFile`, naming the screen, and the screen runs it; the
// same button on a NOC without the key is refused by the screen.
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import path from 'node:path';
import t from 'tap';
import { keyIdOf, rawPublicKeyOf, sealEnvelope } from '../agent/protocol/envelope.js';
import { groupTopic } from '../agent/protocol/index.js';
import { AGENT_BIN, AgentProcess } from './helpers/agent-proc.js';
import { e2eClips } from './helpers/e2e.js';
import { count, fleetConfig, screenClient, startFleet } from './helpers/fleet-rig.js';
import { startBroker } from './helpers/mosquitto.js';
import { tempDir } from './helpers/tmp.js';
import { waitFor } from './helpers/wait.js';

function post(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'x-noc-request': '1' } }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => { body += d; }).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('screenshot button on a signed screen: signed with http.commandKeyFile, refused without it', { skip: existsSync(AGENT_BIN) ? false : 'dist/ not built (npm test builds it)' }, async (t) => {
  const broker = await startBroker(t);
  const dir = tempDir(t, 'noc-signed-');
  const { privateKey } = generateKeyPairSync('ed25519');
  const raw = rawPublicKeyOf(privateKey);
  // As signagectl keygen leaves them: ID.key (PEM) and ID.pub ("ID:base64") beside it.
  const keyId = 'noc-op';
  writeFileSync(path.join(dir, `${keyId}.key`), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  writeFileSync(path.join(dir, `${keyId}.pub`), `${keyId}:${raw.toString('base64')}\n`);
  t.not(keyIdOf(raw), keyId, 'the id comes from the .pub beside the key, not derived');

  const signed = await startFleet(t, fleetConfig(dir, broker.url, 'ingest-signed', { http: { port: 0, commandKeyFile: `${keyId}.key` } }));
  const plainDir = tempDir(t, 'noc-plain-');
  const plain = await startFleet(t, fleetConfig(plainDir, broker.url, 'ingest-plain', { http: { port: 0 } }));

  const ops = await screenClient(t, broker.url);
  const clips = await e2eClips();
  const assignment = { version: 1, campaigns: [], loop: [clips.loop], target: 'group/all', issuedAt: new Date().toISOString() };
  await ops.publishAsync(groupTopic('signage', 'all', 'assignment'), sealEnvelope(assignment, privateKey, keyId), { qos: 1, retain: true });
  const agent = new AgentProcess(dir, 'signed-1', broker.url, { security: { assignmentKeys: [`${keyId}:${raw.toString('base64')}`] } }).register(t);
  agent.start();
  await waitFor('the signed assignment applied', () => agent.logged('desired state applied').length > 0, 60_000);
  for (const f of [signed, plain]) {
    await waitFor('the screen known to both archives', async () => (await f.archive.read((q) => count(q, "SELECT COUNT(*) AS n FROM devices WHERE device_id = 'signed-1' AND status_online = 1"))) === 1, 60_000);
  }
  await waitFor('a heartbeat with the signed loop playing', async () =>
    (await signed.archive.read((q) => count(q, "SELECT COUNT(*) AS n FROM devices WHERE device_id = 'signed-1' AND heartbeat_json LIKE '%\"state\":\"playing\"%'"))) === 1, 60_000);

  const ok = await post(`${signed.http!.url}/api/screens/signed-1/screenshot`);
  t.equal(ok.status, 200);
  const body = JSON.parse(ok.body) as { ok: boolean; png?: string; error?: string };
  t.equal(body.ok, true, body.error ?? 'the signed screenshot command ran');
  t.same([...Buffer.from(body.png ?? '', 'base64').subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG came back');

  const refused = await post(`${plain.http!.url}/api/screens/signed-1/screenshot`);
  const r = JSON.parse(refused.body) as { ok: boolean; error?: string };
  t.equal(r.ok, false, 'an unsigned command is not run by a screen in signed mode');
  t.match(r.error ?? '', /sign|envelope/i, `the screen says why: ${r.error}`);
});
