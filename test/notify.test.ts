import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { silentLogger } from '../agent/core/log.js';
import { SystemdNotifier } from '../agent/systemd/notify.js';

// Node cannot bind an AF_UNIX datagram socket, so the test's own receiver is a few lines of python3.
const RECEIVER = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
while True:
    data, anc, flags, addr = s.recvmsg(65536, 0)
    print(data.decode().replace("\\n", "|"), flush=True)
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

t.test('sends READY, WATCHDOG, STATUS and STOPPING in order to NOTIFY_SOCKET', async (t) => {
  const r = await receiver(t);
  const n = new SystemdNotifier({ socketPath: r.socket, log: silentLogger() });
  t.equal(n.enabled, true);
  await n.ready();
  await n.status('playing ihanoi-2024\nsecond line');
  await n.watchdog();
  await n.stopping();
  const msgs = r.lines.filter((l) => l !== 'bound' && l !== 'BARRIER=1');
  t.same(msgs, ['READY=1', 'STATUS=playing ihanoi-2024 second line', 'WATCHDOG=1', 'STOPPING=1']);
});

t.test('concurrent calls keep their order', async (t) => {
  const r = await receiver(t);
  const n = new SystemdNotifier({ socketPath: r.socket, log: silentLogger() });
  await Promise.all([n.ready(), n.watchdog(), n.status('x'), n.stopping()]);
  t.same(
    r.lines.filter((l) => l !== 'bound' && l !== 'BARRIER=1'),
    ['READY=1', 'WATCHDOG=1', 'STATUS=x', 'STOPPING=1'],
  );
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

t.test('a failing helper is logged, never thrown', async (t) => {
  const n = new SystemdNotifier({ socketPath: '/nonexistent/notify.sock', log: silentLogger(), command: '/nonexistent/systemd-notify' });
  await n.ready();
  await n.watchdog();
  t.pass('resolved despite the missing helper');
});
