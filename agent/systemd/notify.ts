import { execFile } from 'node:child_process';
import type { Logger } from '../core/log.js';

// sd_notify(3) without a native addon. Node cannot open AF_UNIX datagram sockets, so each
// message is handed to `systemd-notify` (always present where systemd is). Since systemd 246
// systemd-notify follows every message with BARRIER=1 and waits until PID 1 has consumed it,
// so the message is attributed to our unit even though the helper process exits right after;
// the unit needs NotifyAccess=all because the sender is a child of the main process.
// A spawn costs a few milliseconds; we send at most one message per half watchdog period.

export interface NotifierContext {
  /** NOTIFY_SOCKET as passed by systemd; without it every method is a no-op. */
  socketPath?: string;
  log: Logger;
  /** The helper binary; tests may point it elsewhere. */
  command?: string;
  /** Per-message limit: systemd-notify itself gives up on the barrier after 5 s. */
  timeoutMs?: number;
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

  constructor(ctx: NotifierContext) {
    this.socketPath = ctx.socketPath || undefined;
    this.log = ctx.log;
    this.command = ctx.command ?? 'systemd-notify';
    this.timeoutMs = ctx.timeoutMs ?? 8000;
  }

  get enabled(): boolean {
    return this.socketPath !== undefined;
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

  private send(assignments: string[]): Promise<void> {
    const socket = this.socketPath;
    if (socket === undefined) return Promise.resolve();
    const next = this.chain.then(() => this.spawn(socket, assignments));
    this.chain = next;
    return next;
  }

  private spawn(socket: string, assignments: string[]): Promise<void> {
    return new Promise((resolve) => {
      execFile(
        this.command,
        assignments,
        { env: { NOTIFY_SOCKET: socket, PATH: SAFE_PATH }, timeout: this.timeoutMs, windowsHide: true },
        (err, _stdout, stderr) => {
          // Never throws: a lost notification is systemd's business (it restarts us on a missed
          // watchdog); crashing the player over it would be worse.
          if (err) {
            const level = this.warned ? 'debug' : 'warn';
            this.warned = true;
            this.log[level]({ err: err.message, stderr: String(stderr).trim(), msg0: assignments[0] }, 'sd_notify failed');
          }
          resolve();
        },
      );
    });
  }
}
