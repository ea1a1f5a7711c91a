import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import t from 'tap';
import { AGENT_BIN, AgentProcess, sha256File } from './helpers/agent-proc.js';
import { makeClip } from './helpers/clips.js';
import { ctl } from './helpers/ctl.js';
import { assignment, DEVICE, PREFIX, rig, topic } from './helpers/link-rig.js';
import { startBroker } from './helpers/mosquitto.js';
import { tempDir } from './helpers/tmp.js';
import { waitedFor, waitFor } from './helpers/wait.js';

// Issue 10 item 2 (and the tool half of item 3): signing usable by operators. signagectl keygen
// makes the keys, --key signs every publishing command, keys publish signs a key set with a root
// key; screens in signed mode apply what it sends.

const keygen = async (dir: string, id?: string): Promise<{ key: string; line: string }> => {
  const r = await ctl(['keygen', '--out', dir, ...(id ? ['--id', id] : [])]);
  if (r.code !== 0) throw new Error(r.err.join('\n'));
  const line = r.out[0]!;
  return { key: path.join(dir, `${line.split(':')[0]}.key`), line };
};

t.test('keygen: a 0600 PEM key, the public line printed, never overwritten', async (t) => {
  const dir = tempDir(t, 'keygen-');
  const named = await keygen(dir, 'noc-1');
  t.match(named.line, /^noc-1:[A-Za-z0-9+/]{43}=$/);
  t.equal(statSync(named.key).mode & 0o777, 0o600, 'private key is 0600');
  t.match(readFileSync(named.key, 'utf8'), /^-----BEGIN PRIVATE KEY-----/);
  t.equal(readFileSync(path.join(dir, 'noc-1.pub'), 'utf8').trim(), named.line);
  const again = await ctl(['keygen', '--out', dir, '--id', 'noc-1']);
  t.equal(again.code, 2);
  t.match(again.err.join('\n'), /exists: not overwritten/);
  const derived = await keygen(dir);
  t.match(derived.line, /^[0-9a-f]{16}:/, 'without --id: the id the agent derives');
  const badExpiry = await ctl(['cmd', '--url', 'mqtt://127.0.0.1:1', '--device', DEVICE, '--key', named.key, '--expires', '25h', 'ping']);
  t.equal(badExpiry.code, 2, 'a command living over 24 h is refused before connecting');
  t.match(badExpiry.err.join('\n'), /more than 24 h/);
});

t.test('assign, override (and --clear), cmd, screenshot, report signed with --key; a key set by keys publish', async (t) => {
  const dir = tempDir(t, 'ctl-sign-');
  const ops = await keygen(dir, 'ops');
  const root = await keygen(dir, 'root');
  const scoped = await keygen(dir, 'lobby-ops');
  const r = await rig(t, { security: { assignmentKeys: [ops.line], rootKeys: [root.line] } }, { rejectedWindowMs: 0 });
  const url = r.broker.url;
  const file = path.join(dir, 'a.json');
  const { version: _, ...doc } = assignment(1);
  writeFileSync(file, JSON.stringify(doc));

  const plain = await ctl(['assign', '--url', url, '--device', DEVICE, '--file', file]);
  t.equal(plain.code, 0);
  await waitFor('unsigned refused', () => r.obs.events('rejected').length === 1);
  t.match(r.obs.events('rejected')[0].detail.reason, /signed envelope required/);

  const a = await ctl(['assign', '--url', url, '--device', DEVICE, '--file', file, '--key', ops.key, '--not-after', '+30d']);
  t.equal(a.code, 0, a.err.join('\n'));
  t.match(a.out[0], /signed with key ops/);
  await waitFor('signed assignment applied', () => r.obs.events('applied').some((e) => e.detail.kind === 'assignment'));
  const applied = r.obs.events('applied').find((e) => e.detail.kind === 'assignment').detail;
  t.equal(applied.keyId, 'ops');
  t.ok(Math.abs(applied.version - Date.now() / 1000) < 60, 'the version is Unix seconds');
  const stored = (await r.store.loadDesired()).assignments[0]!.doc!;
  t.equal(stored.target, `device/${DEVICE}`);
  t.ok(Math.abs(Date.parse(stored.issuedAt!) - Date.now()) < 60_000, 'issuedAt is now');
  t.ok(Date.parse(stored.notAfter!) > Date.now() + 29 * 86_400_000, 'notAfter from --not-after');

  const ov = await ctl(['override', '--url', url, '--device', DEVICE, '--campaign', 'c1', '--times', '3', '--key', ops.key]);
  t.equal(ov.code, 0, ov.err.join('\n'));
  await waitFor('signed override applied', () => r.obs.events('applied').some((e) => e.detail.kind === 'override'));
  const clear = await ctl(['override', '--url', url, '--device', DEVICE, '--clear', '--key', ops.key]);
  t.equal(clear.code, 0, clear.err.join('\n'));
  t.match(clear.out[0], /signed empty override/);
  await waitFor('signed clear applied', () => r.obs.events('applied').filter((e) => e.detail.kind === 'override').length === 2);
  t.same((await r.store.loadDesired()).overrides[0]!.doc!.campaigns, {}, 'nothing overridden any more');

  for (const args of [['cmd', 'ping'], ['screenshot', '--out', path.join(dir, 's.png')], ['report', '--date', '2024-08-15']]) {
    const [name, ...more] = args;
    const c = await ctl([name!, '--url', url, '--device', DEVICE, '--key', ops.key, '--timeout', '5s', ...more]);
    t.equal(c.code, 0, `${name} signed: ${c.err.join('\n')}`);
  }
  t.equal(existsSync(path.join(dir, 's.png')), true);
  const unsignedCmd = await ctl(['cmd', '--url', url, '--device', DEVICE, '--timeout', '2s', 'ping']);
  t.equal(unsignedCmd.code, 1, 'an unsigned command gets no run');

  // The key set: a scoped key for group lobby's commands and this device's assignments.
  const keysFile = path.join(dir, 'keys.json');
  writeFileSync(keysFile, JSON.stringify({ keys: [{ keyId: 'lobby-ops', publicKey: scoped.line.split(':')[1], scopes: { targets: [`device/${DEVICE}`], kinds: ['assignment'] }, expiresAt: new Date(Date.now() + 86_400_000).toISOString() }] }));
  const bad = await ctl(['keys', 'publish', '--url', url, '--root-key', root.key, '--file', keysFile.replace('keys', 'none')]);
  t.equal(bad.code, 2);
  const pub = await ctl(['keys', 'publish', '--url', url, '--root-key', root.key, '--file', keysFile]);
  t.equal(pub.code, 0, pub.err.join('\n'));
  t.match(pub.out[0], /key set version \d+ .*signed by root key root: lobby-ops/);
  await waitFor('key set applied', () => r.obs.events('applied').some((e) => e.detail.kind === 'keys'));
  const retained = await mqtt.connectAsync(url, { protocolVersion: 5 });
  t.teardown(() => retained.endAsync());
  const got: string[] = [];
  retained.on('message', (tp) => got.push(tp));
  await retained.subscribeAsync(`${PREFIX}/keys`);
  await waitFor('retained on the broker', () => got.length === 1);

  const s = await ctl(['assign', '--url', url, '--device', DEVICE, '--file', file, '--key', scoped.key]);
  t.equal(s.code, 0, s.err.join('\n'));
  await waitFor('the scoped key applies', () => r.obs.events('applied').some((e) => e.detail.keyId === 'lobby-ops'));
  const n = r.obs.events('rejected').length;
  const outOfScope = await ctl(['override', '--url', url, '--device', DEVICE, '--campaign', 'c1', '--times', '2', '--key', scoped.key]);
  t.equal(outOfScope.code, 0, 'published (the screen decides)');
  await waitFor('out of scope refused', () => r.obs.events('rejected').length === n + 1);
  t.match(r.obs.events('rejected').at(-1).detail, { topic: topic.device('override'), reason: /not scoped for override/ });
  const rootSigns = await ctl(['keys', 'publish', '--url', url, '--root-key', root.key, '--root-key-id', 'root', '--file', keysFile, '--dry-run']);
  t.equal(rootSigns.code, 0);
});

t.test('keygen → assign --key → a real agent process applies it', { skip: existsSync(AGENT_BIN) ? false : 'dist/ not built' }, async (t) => {
  const broker = await startBroker(t);
  const dir = tempDir(t, 'ctl-sign-agent-');
  const ops = await keygen(dir, 'noc');
  const agent = new AgentProcess(dir, 'sig-e2e', broker.url, { security: { assignmentKeys: [ops.line] } }).register(t);
  const status = await mqtt.connectAsync(broker.url, { protocolVersion: 5, reconnectPeriod: 0 });
  t.teardown(() => status.endAsync());
  let last: { online?: boolean; applied?: { device?: number } } = {};
  const events: Array<{ type: string; detail: Record<string, unknown> }> = [];
  status.on('message', (tp, p) => {
    if (!p.length) return;
    if (tp.endsWith('/status')) last = JSON.parse(p.toString()) as typeof last;
    else events.push(JSON.parse(p.toString()) as (typeof events)[number]);
  });
  await status.subscribeAsync(['signage/device/sig-e2e/status', 'signage/device/sig-e2e/event'], { qos: 1 });
  agent.start();
  t.ok(await waitedFor('online', () => last.online === true, 20_000, 50), 'the agent is online');
  const clip = await makeClip({ kind: 'pattern', seconds: 2 });
  const file = path.join(dir, 'a.json');
  writeFileSync(file, JSON.stringify({ campaigns: [{ id: 'signed-spot', media: { url: `file://${clip}`, sha256: sha256File(clip) }, timesPerDay: 24 }] }));
  const a = await ctl(['assign', '--url', broker.url, '--device', 'sig-e2e', '--file', file, '--key', ops.key]);
  t.equal(a.code, 0, a.err.join('\n'));
  const version = Number(/version (\d+)/.exec(a.out[0] ?? '')?.[1]);
  t.ok(await waitedFor('applied', () => last.applied?.device === version, 20_000, 50), `the agent applied version ${version}`);
  t.match(events.find((e) => e.type === 'applied')?.detail, { keyId: 'noc', version });
  const ping = await ctl(['cmd', '--url', broker.url, '--device', 'sig-e2e', '--key', ops.key, 'ping']);
  t.equal(ping.code, 0, ping.err.join('\n'));

  // notAfter: in force until then, and dropped at that moment by the agent's own timer (no message).
  const campaigns = async (): Promise<unknown> => {
    const st = await ctl(['cmd', '--url', broker.url, '--device', 'sig-e2e', '--key', ops.key, 'status']);
    return (JSON.parse(st.out.join('\n')) as { result?: { campaigns?: unknown } }).result?.campaigns;
  };
  const short = await ctl(['assign', '--url', broker.url, '--device', 'sig-e2e', '--file', file, '--key', ops.key, '--not-after', '+5s']);
  t.equal(short.code, 0, short.err.join('\n'));
  const v2 = Number(/version (\d+)/.exec(short.out[0] ?? '')?.[1]);
  t.ok(await waitedFor('applied', () => last.applied?.device === v2, 20_000, 50), 'the short-lived assignment applied');
  t.same(await campaigns(), ['signed-spot'], 'in force before its notAfter');
  t.ok(await waitedFor('dropped at notAfter', async () => JSON.stringify(await campaigns()) === '[]', 20_000, 500), 'no campaign in force after its notAfter');
  t.ok(agent.lines.some((l) => /notAfter/.test(String(l.msg))), 'the agent says why it re-planned');
  t.equal(await agent.stop(), 0);
});
