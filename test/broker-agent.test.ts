import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { AgentProcess } from './helpers/agent-proc.js';
import { e2eClips, windowFromNow, type PlayMsg } from './helpers/e2e.js';

import { brokerTool, connect, issued, startProdBroker } from './helpers/prod-broker.js';
import { tempDir } from './helpers/tmp.js';
import { waitFor } from './helpers/wait.js';

// The real agent behind the shipped broker config and ACL, with the password and CA that
// `signagectl broker add-device` issued it: everything it subscribes to and publishes must be
// granted, or it never gets to its birth message (a refused subscription fails the whole
// SUBSCRIBE in mqtt.js).

for (const conf of ['mosquitto.conf', 'mosquitto-dynsec.conf'] as const) t.test(`the agent under the shipped ${conf}: birth, group assignment applied, plays and a command reach the NOC`, async (t) => {
  const dir = tempDir(t, 'broker-agent-');
  const state = path.join(dir, 'broker');
  await brokerTool(state, 'init-ca', '--server-name', '127.0.0.1', '--no-reload');
  let broker;
  if (conf === 'mosquitto.conf') {
    await brokerTool(state, 'add-operator', '--name', 'noc', '--role', 'noc', '--no-reload');
    await brokerTool(state, 'add-device', '--id', 'acl-1', '--groups', 'all,site-1', '--no-reload');
    broker = await startProdBroker(t, state);
  } else {
    execFileSync('mosquitto_ctrl', ['dynsec', 'init', path.join(state, 'dynamic-security.json'), 'admin', 'admin-pw'], { stdio: 'ignore' });
    writeFileSync(path.join(state, 'admin.pass'), 'admin-pw\n');
    broker = await startProdBroker(t, state, { conf });
    const dyn = ['--dynsec', broker.nocUrl, '--admin-user', 'admin', '--admin-password-file', path.join(state, 'admin.pass'), '--ca', path.join(state, 'ca', 'ca.crt')];
    await brokerTool(state, 'dynsec-init', ...dyn);
    await brokerTool(state, 'add-operator', '--name', 'noc', '--role', 'noc', ...dyn);
    await brokerTool(state, 'add-device', '--id', 'acl-1', '--groups', 'all,site-1', ...dyn);
  }

  const ops = await connect(t, broker.nocUrl, { ...issued(state, 'noc'), clientId: 'noc-test' });
  const got: Array<{ topic: string; json: Record<string, unknown> }> = [];
  ops.on('message', (topic, p) => {
    try {
      got.push({ topic, json: JSON.parse(p.toString()) as Record<string, unknown> });
    } catch {
      // empty payloads
    }
  });
  await ops.subscribeAsync(['signage/device/+/status', 'signage/device/+/play', 'signage/device/+/event', 'signage/device/+/cmd/result', 'signage/device/+/heartbeat'], { qos: 1 });
  const mine = (suffix: string): Array<Record<string, unknown>> => got.filter((m) => m.topic === `signage/device/acl-1/${suffix}`).map((m) => m.json);

  const clips = await e2eClips();
  const w = windowFromNow(3000, 600);
  await ops.publishAsync('signage/group/site-1/assignment', JSON.stringify({
    version: 1,
    campaigns: [{ id: 'spot', media: { ...clips.spot, durationMs: 2000 }, timesPerDay: 120, windows: [w.window] }],
    loop: [clips.loop],
  }), { qos: 1, retain: true });

  const ids = issued(state, 'acl-1');
  const agent = new AgentProcess(dir, 'acl-1', broker.passUrl, {
    mqtt: {
      url: broker.passUrl, username: ids.username, passwordFile: path.join(state, 'issued', 'acl-1', 'mqtt.pass'),
      caFile: path.join(state, 'issued', 'acl-1', 'ca.crt'), reconnectMinMs: 200, reconnectMaxMs: 2000, keepaliveSec: 5,
    },
  }).register(t);
  agent.start();

  await waitFor('birth on the NOC', () => mine('status').some((s) => s.online === true), 30_000);
  await waitFor('the group assignment applied', () => mine('event').some((e) => e.type === 'applied'), 30_000);
  await waitFor('a completed play on signage/device/+/play', () => (mine('play') as unknown as PlayMsg[]).some((p) => p.outcome === 'completed'), 40_000);
  await ops.publishAsync('signage/device/acl-1/cmd', JSON.stringify({ id: 'c-1', name: 'ping' }), {
    qos: 1, properties: { responseTopic: 'signage/device/acl-1/cmd/result', correlationData: Buffer.from('c-1') },
  });
  await waitFor('the command answered', () => mine('cmd/result').some((r) => r.id === 'c-1' && r.ok === true), 20_000);
  t.same(agent.logged('mqtt: subscribe or birth failed'), [], 'no subscription refused');
  await agent.stop();
});
