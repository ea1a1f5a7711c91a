import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { silentLogger } from '../agent/core/log.js';
import { SystemdNotifier } from '../agent/systemd/notify.js';
import { AgentProcess } from './helpers/agent-proc.js';
import { startBroker } from './helpers/mosquitto.js';
import { tempDir } from './helpers/tmp.js';

// The receiver is a few lines of python3 that, like PID 1, asks the kernel for each datagram's
// SCM_CREDENTIALS: the sender's pid is what NotifyAccess=main checks. Lines: "<pid> <message>".
const RECEIVER = `
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(sys.argv[1])
print("bound", flush=True)
while True:
    data, anc, flags, addr = s.recvmsg(65536, socket.CMSG_SPACE(12))
    pid = 0
    for level, kind, cdata in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", cdata[:12])[0]
    print(str(pid) + " " + data.decode().replace("\\n", "|"), flush=True)
`;

async function receiver(t: Test): Promise<{ socket: string; lines: string[]; waitFor: (s: string) => Promise<void> }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'notify-'));
  const socket = path.join(dir, 'notify.sock');
  const child = spawn('python3', ['-c', RECEIVER, socket], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  let buf = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
      waiters.splice(0).forEach((w) => w());
    }
  });
  const waitFor = (s: string): Promise<void> =>
    new Promise((resolve) => {
      const check = (): void => (lines.includes(s) ? resolve() : void waiters.push(check));
      check();
    });
  await waitFor('bound');
  return { socket, lines, waitFor };
}

/** The messages, without the receiver's own lines and the sender pids. */
function received(lines: string[]): string[] {
  return lines.filter((l) => l !== 'bound').map((l) => l.slice(l.indexOf(' ') + 1));
}
function senders(lines: string[]): number[] {
  return lines.filter((l) => l !== 'bound').map((l) => Number(l.slice(0, l.indexOf(' '))));
}

t.test('sends READY, WATCHDOG, STATUS and STOPPING in order to NOTIFY_SOCKET', async (t) => {
  const r = await receiver(t);
  const n = new SystemdNotifier({ socketPath: r.socket, log: silentLogger() });
  t.equal(n.enabled, true);
  await n.ready();
  await n.status('playing ihanoi-2024\nsecond line');
  await n.watchdog();
  await n.stopping();
  await r.waitFor(`${process.pid} STOPPING=1`);
  n.close();
  t.equal(n.transport, 'direct');
  t.same(received(r.lines), ['READY=1', 'STATUS=playing ihanoi-2024 second line', 'WATCHDOG=1', 'STOPPING=1']);
  // Sent from this very process: the pid PID 1 checks against the unit's main pid (NotifyAccess=main).
  t.same([...new Set(senders(r.lines))], [process.pid], 'every datagram carries our own pid');
});

t.test('an abstract socket name (@...) goes through the systemd-notify helper, a child', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'notify-helper-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const log = path.join(dir, 'argv');
  const helper = path.join(dir, 'systemd-notify');
  writeFileSync(helper, `#!/bin/sh\necho "$NOTIFY_SOCKET $*" >> ${log}\n`, { mode: 0o755 });
  const n = new SystemdNotifier({ socketPath: '@/org/test/notify', log: silentLogger(), command: helper });
  t.equal(n.transport, 'helper');
  await n.ready();
  await n.watchdog();
  t.equal(readFileSync(log, 'utf8'), '@/org/test/notify READY=1\n@/org/test/notify WATCHDOG=1\n');
});

t.test('concurrent calls keep their order', async (t) => {
  const r = await receiver(t);
  const n = new SystemdNotifier({ socketPath: r.socket, log: silentLogger() });
  await Promise.all([n.ready(), n.watchdog(), n.status('x'), n.stopping()]);
  await r.waitFor(`${process.pid} STOPPING=1`);
  n.close();
  t.same(received(r.lines), ['READY=1', 'WATCHDOG=1', 'STATUS=x', 'STOPPING=1']);
});

t.test('no socket: every method is a no-op; watchdog interval is half of WATCHDOG_USEC', async (t) => {
  const n = new SystemdNotifier({ log: silentLogger() });
  t.equal(n.enabled, false);
  await n.ready();
  await n.watchdog();
  await n.stopping();
  t.equal(n.watchdogIntervalMs('30000000'), 15000);
  t.equal(n.watchdogIntervalMs(undefined), undefined);
  t.equal(n.watchdogIntervalMs('0'), undefined);
  t.equal(n.watchdogIntervalMs('abc'), undefined);
});

t.test('a missing socket or helper is logged, never thrown', async (t) => {
  for (const socketPath of ['/nonexistent/notify.sock', '@/nonexistent']) {
    const warnings: string[] = [];
    const log = silentLogger();
    const spy = Object.assign(Object.create(log), { warn: (o: { msg0?: string }) => warnings.push(String(o.msg0)), debug: (o: { msg0?: string }) => warnings.push(String(o.msg0)) });
    const n = new SystemdNotifier({ socketPath, log: spy, command: '/nonexistent/systemd-notify' });
    await n.ready();
    await n.watchdog();
    n.close();
    t.same(warnings, ['READY=1', 'WATCHDOG=1'], `${socketPath}: both failures logged, neither thrown`);
  }
});

t.test('the running agent notifies from its own pid: what NotifyAccess=main in the unit accepts', async (t) => {
  const r = await receiver(t);
  const broker = await startBroker(t);
  const agent = new AgentProcess(tempDir(t, 'notify-agent-'), 'notify-1', broker.url).register(t);
  agent.notifySocket = r.socket;
  agent.start();
  const pid = agent.pid!;
  await r.waitFor(`${pid} READY=1`);
  t.equal(await agent.stop(), 0);
  await r.waitFor(`${pid} STOPPING=1`);
  const fromOthers = r.lines.filter((l) => l !== 'bound' && !l.startsWith(`${pid} `));
  t.same(fromOthers, [], 'no notification came from any other process (mpv, probes, systemd-notify)');
});
