import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import t from 'tap';
import { main } from '../scripts/signagectl/cli.js';
import { AGENT_BIN, AgentProcess, sha256File } from './helpers/agent-proc.js';
import { makeClip } from './helpers/clips.js';
import { startBroker } from './helpers/mosquitto.js';
import { tempDir } from './helpers/tmp.js';
import { waitedFor } from './helpers/wait.js';

// signagectl against a running agent (the built bin, headless mpv, a real mosquitto): the
// round trips operators rely on, end to end.

async function ctl(argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (l) => out.push(l), err: (l) => err.push(l), isTTY: false });
  return { code, out, err };
}

function today(tz: string): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date());
}

t.test('assign, cmd, screenshot, report and watch against a running agent', { skip: existsSync(AGENT_BIN) ? false : 'dist/ not built (npm test builds it)' }, async (t) => {
  const broker = await startBroker(t);
  const dir = tempDir(t, 'ctl-agent-');
  const agent = new AgentProcess(dir, 'ctl-e2e', broker.url).register(t);

  const status = await mqtt.connectAsync(broker.url, { protocolVersion: 5, reconnectPeriod: 0 });
  t.teardown(() => status.endAsync());
  let last: { online?: boolean; applied?: { device?: number } } = {};
  status.on('message', (_tp, p) => {
    if (p.length) last = JSON.parse(p.toString()) as typeof last;
  });
  await status.subscribeAsync('signage/device/ctl-e2e/status', { qos: 1 });
  const until = async (what: string, ok: () => boolean, ms = 20_000): Promise<void> => {
    if (!(await waitedFor(what, ok, ms, 50))) throw new Error(`timed out waiting for ${what}; agent said: ${agent.lines.slice(-5).map((l) => JSON.stringify(l)).join('\n')}`);
  };
  agent.start();
  await until('the agent online', () => last.online === true);

  const clip = await makeClip({ kind: 'pattern', seconds: 2 });
  const file = path.join(dir, 'assignment.json');
  writeFileSync(file, JSON.stringify({ campaigns: [{ id: 'ctl-spot', media: { url: `file://${clip}`, sha256: sha256File(clip) }, timesPerDay: 24 }], loop: [{ url: `file://${clip}`, sha256: sha256File(clip) }] }));
  const assign = await ctl(['assign', '--url', broker.url, '--device', 'ctl-e2e', '--file', file]);
  t.equal(assign.code, 0, assign.err.join('\n'));
  const published = Number(/version (\d+)/.exec(assign.out[0] ?? '')?.[1]);
  await until('the assignment applied', () => last.applied?.device === published);
  t.pass(`the agent applied version ${published}`);

  const ping = await ctl(['cmd', '--url', broker.url, '--device', 'ctl-e2e', 'ping']);
  t.equal(ping.code, 0, ping.err.join('\n'));
  t.match(JSON.parse(ping.out.join('\n')), { ok: true });

  const st = await ctl(['cmd', '--url', broker.url, '--device', 'ctl-e2e', 'status']);
  t.equal(st.code, 0, st.err.join('\n'));
  t.match(JSON.parse(st.out.join('\n')), { ok: true, result: { deviceId: 'ctl-e2e', campaigns: ['ctl-spot'] } });

  const unknown = await ctl(['cmd', '--url', broker.url, '--device', 'ctl-e2e', 'no-such-command']);
  t.equal(unknown.code, 1);

  const png = path.join(dir, 'shot.png');
  // The loop clip starts once the media is in the cache: until then there is no frame to capture.
  let shot = await ctl(['screenshot', '--url', broker.url, '--device', 'ctl-e2e', '--out', png]);
  for (let i = 0; i < 40 && shot.code !== 0; i++) {
    await new Promise((r) => setTimeout(r, 250));
    shot = await ctl(['screenshot', '--url', broker.url, '--device', 'ctl-e2e', '--out', png]);
  }
  t.equal(shot.code, 0, shot.err.join('\n') + shot.out.join('\n'));
  t.equal(readFileSync(png).subarray(0, 4).toString('hex'), '89504e47', 'a PNG');

  const report = await ctl(['report', '--url', broker.url, '--date', today('Asia/Ho_Chi_Minh'), '--csv']);
  t.equal(report.code, 0, report.err.join('\n'));
  t.match(report.out.join('\n'), /^ctl-e2e,ctl-spot,\d{4}-\d{2}-\d{2},\d+,\d+,(true|false),ok$/m);

  const watch = await ctl(['watch', '--url', broker.url, '--once', '--for', '6s']);
  t.equal(watch.code, 0);
  t.match(watch.out.join('\n'), /^ctl-e2e\s+online\s+\d+s ago/m);

  const ov = await ctl(['override', '--url', broker.url, '--device', 'ctl-e2e', '--campaign', 'ctl-spot', '--times', '48', '--expires', '+1h']);
  t.equal(ov.code, 0, ov.err.join('\n'));
  t.equal(await agent.stop(), 0, 'the agent stops cleanly');
});
