import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import type { Logger } from '../core/log.js';

// sd_notify(3). PID 1 attributes a notification to a unit by the sender's SCM_CREDENTIALS pid,
// which the kernel fills in with the sending process's own pid. Node has no AF_UNIX datagram
// socket, so the datagram is sent from this process through `unix-dgram` (a small native addon):
// the agent's own pid, so the unit can say NotifyAccess=main and no mpv or probe helper in its
// cgroup can send READY/WATCHDOG/STOPPING on its behalf. An abstract socket name (`@...`, never
// used for system units: theirs is /run/systemd/notify) cannot be addressed by unix-dgram; only
// then is the message handed to `systemd-notify`, a child, which needs NotifyAccess=all.

export interface NotifierContext {
  /** NOTIFY_SOCKET as passed by systemd; without it every method is a no-op. */
  socketPath?: string;
  log: Logger;
  /** The helper binary for abstract socket names; tests may point it elsewhere. */
  command?: string;
  /** Per-message limit for the helper: systemd-notify itself gives up on its barrier after 5 s. */
  timeoutMs?: number;
}

interface DgramSocket {
  send(buf: Buffer, offset: number, length: number, path: string, cb: (err?: Error) => void): void;
  close(): void;
  on(event: 'error', fn: (err: Error) => void): void;
}
interface DgramModule {
  createSocket(type: 'unix_dgram'): DgramSocket;
}

const SAFE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export class SystemdNotifier {
  private readonly socketPath: string | undefined;
  private readonly log: Logger;
  private readonly command: string;
  private readonly timeoutMs: number;
  /** Messages go out one at a time and in order: READY must never overtake a STATUS, etc. */
  private chain: Promise<void> = Promise.resolve();
  private warned = false;
  private socket: DgramSocket | undefined;

  constructor(ctx: NotifierContext) {
    this.socketPath = ctx.socketPath || undefined;
    this.log = ctx.log;
    this.command = ctx.command ?? 'systemd-notify';
    this.timeoutMs = ctx.timeoutMs ?? 8000;
  }

  get enabled(): boolean {
    return this.socketPath !== undefined;
  }

  /** `direct`: sent from this process (NotifyAccess=main works); `helper`: through systemd-notify. */
  get transport(): 'direct' | 'helper' | 'none' {
    if (this.socketPath === undefined) return 'none';
    return this.socketPath.startsWith('@') ? 'helper' : 'direct';
  }

  ready(): Promise<void> {
    return this.send(['READY=1']);
  }

  watchdog(): Promise<void> {
    return this.send(['WATCHDOG=1']);
  }

  stopping(): Promise<void> {
    return this.send(['STOPPING=1']);
  }

  status(text: string): Promise<void> {
    // One line: a newline would start a new (possibly meaningful) assignment.
    return this.send([`STATUS=${text.replace(/[\r\n]+/g, ' ').slice(0, 500)}`]);
  }

  /** Half of WATCHDOG_USEC in ms (the interval systemd recommends), or undefined without a watchdog. */
  watchdogIntervalMs(watchdogUsec?: string): number | undefined {
    if (watchdogUsec === undefined || !/^\d+$/.test(watchdogUsec.trim())) return undefined;
    const usec = Number(watchdogUsec.trim());
    if (!Number.isFinite(usec) || usec <= 0) return undefined;
    return Math.max(1, Math.floor(usec / 2000));
  }

  /** Closes the datagram socket; a later message opens a new one. */
  close(): void {
    this.socket?.close();
    this.socket = undefined;
  }

  private send(assignments: string[]): Promise<void> {
    const socket = this.socketPath;
    if (socket === undefined) return Promise.resolve();
    const next = this.chain.then(() => (this.transport === 'direct' ? this.sendDirect(socket, assignments) : this.spawn(socket, assignments)));
    this.chain = next;
    return next;
  }

  // Never throws: a lost notification is systemd's business (it restarts us on a missed
  // watchdog); crashing the player over it would be worse.
  private failed(err: Error, assignments: string[], stderr = ''): void {
    const level = this.warned ? 'debug' : 'warn';
    this.warned = true;
    this.log[level]({ err: err.message, ...(stderr ? { stderr } : {}), msg0: assignments[0], transport: this.transport }, 'sd_notify failed');
  }

  private sendDirect(path: string, assignments: string[]): Promise<void> {
    return new Promise((resolve) => {
      let sock: DgramSocket;
      try {
        sock = this.socket ??= this.openSocket();
      } catch (e) {
        this.failed(e as Error, assignments);
        resolve();
        return;
      }
      const buf = Buffer.from(assignments.join('\n'), 'utf8');
      sock.send(buf, 0, buf.length, path, (err) => {
        if (err) this.failed(err, assignments);
        resolve();
      });
    });
  }

  private openSocket(): DgramSocket {
    // unix-dgram is CommonJS and ships no types; loaded on first use so a box without NOTIFY_SOCKET never loads it.
    const mod = createRequire(import.meta.url)('unix-dgram') as DgramModule;
    const sock = mod.createSocket('unix_dgram');
    sock.on('error', (err) => this.failed(err, ['(socket)']));
    return sock;
  }

  private spawn(socket: string, assignments: string[]): Promise<void> {
    return new Promise((resolve) => {
      execFile(
        this.command,
        assignments,
        { env: { NOTIFY_SOCKET: socket, PATH: SAFE_PATH }, timeout: this.timeoutMs, windowsHide: true },
        (err, _stdout, stderr) => {
          if (err) this.failed(err, assignments, String(stderr).trim());
          resolve();
        },
      );
    });
  }
}
