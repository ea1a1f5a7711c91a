import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { SystemClock, type Clock, type TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/log.js';

// mpv's JSON IPC over a socketpair on the child's fd 3 (`--input-ipc-client=fd://3`): no socket
// file, no connect race, and mpv quits by itself when the agent dies (its end of the pair closes).
// node-mpv was rejected for losing split messages, orphaning mpv and restarting silently
// (STACK-NOTES.md); everything here is built so that none of those can happen.

/**
 * Splits a byte stream into lines. Works on bytes, not strings, so a UTF-8 character cut between
 * two reads is decoded whole; any number of lines may arrive in one chunk or one line in many.
 */
export class LineSplitter {
  private rest: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): string[] {
    const buf = this.rest.length ? Buffer.concat([this.rest, chunk]) : chunk;
    const lines: string[] = [];
    let start = 0;
    for (let nl = buf.indexOf(0x0a, start); nl !== -1; nl = buf.indexOf(0x0a, start)) {
      const line = buf.toString('utf8', start, nl).trim();
      if (line) lines.push(line);
      start = nl + 1;
    }
    this.rest = start === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(start));
    return lines;
  }
}

export type EndFileReason = 'eof' | 'stop' | 'quit' | 'error' | 'redirect' | 'unknown';

export interface EndFileEvent {
  reason: EndFileReason;
  playlistEntryId?: number;
  fileError?: string;
}

export interface MpvExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Spawn error (e.g. mpv not found), if that is why it ended. */
  error?: string;
}

/** Typed events of MpvIpc. `event` carries every raw mpv event, including those with no typed form. */
export interface MpvIpcEvents {
  'start-file': [e: { playlistEntryId?: number }];
  'file-loaded': [];
  'playback-restart': [];
  'end-file': [e: EndFileEvent];
  'property-change': [name: string, data: unknown];
  event: [raw: Record<string, unknown>];
  /** A stderr line from mpv (warnings and errors, given `--msg-level=all=warn`). */
  log: [line: string];
  exit: [e: MpvExit];
}

export interface CommandOptions {
  /** Default: the client's `defaultTimeoutMs`. */
  timeoutMs?: number;
  /**
   * Called synchronously with the reply's data before any later message is dispatched. A promise
   * continuation runs too late for that: the events a command causes (start-file after loadfile)
   * are often in the same read as its reply.
   */
  onReply?: (data: unknown) => void;
}

export class MpvCommandError extends Error {
  constructor(readonly command: unknown[], readonly mpvError: string) {
    super(`mpv ${String(command[0])}: ${mpvError}`);
  }
}

export interface MpvIpcContext {
  mpvPath: string;
  /** Everything but the IPC option, which the client adds. */
  args: string[];
  log: Logger;
  clock?: Clock;
  /** Per-request timeout unless a command says otherwise. Default 5000 ms. */
  defaultTimeoutMs?: number;
}

interface Pending {
  command: unknown[];
  resolve: (data: unknown) => void;
  reject: (e: Error) => void;
  timer: TimerHandle;
  onReply?: ((data: unknown) => void) | undefined;
}

/** One mpv process and its IPC channel. Single use: after exit, make a new one. */
export class MpvIpc {
  private readonly ee = new EventEmitter();
  private readonly clock: Clock;
  private readonly timeoutMs: number;
  private child: ChildProcess | undefined;
  private sock: Socket | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private nextObserveId = 1;
  private exitInfo: MpvExit | undefined;
  private stderrTail: string[] = [];

  constructor(private readonly ctx: MpvIpcContext) {
    this.clock = ctx.clock ?? new SystemClock();
    this.timeoutMs = ctx.defaultTimeoutMs ?? 5000;
    this.ee.setMaxListeners(50);
  }

  on<K extends keyof MpvIpcEvents>(name: K, fn: (...a: MpvIpcEvents[K]) => void): this {
    this.ee.on(name, fn as (...a: unknown[]) => void);
    return this;
  }
  off<K extends keyof MpvIpcEvents>(name: K, fn: (...a: MpvIpcEvents[K]) => void): this {
    this.ee.off(name, fn as (...a: unknown[]) => void);
    return this;
  }
  private emit<K extends keyof MpvIpcEvents>(name: K, ...a: MpvIpcEvents[K]): void {
    this.ee.emit(name, ...a);
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }
  get exited(): MpvExit | undefined {
    return this.exitInfo;
  }

  /** Spawns mpv and resolves once it answers a request; rejects (with mpv's stderr) if it dies first. */
  async start(): Promise<void> {
    if (this.child) throw new Error('MpvIpc is single use');
    const child = spawn(this.ctx.mpvPath, [...this.ctx.args, '--input-ipc-client=fd://3'], {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    });
    this.child = child;
    const sock = child.stdio[3] as Socket;
    this.sock = sock;
    const splitter = new LineSplitter();
    sock.on('data', (d: Buffer) => {
      for (const line of splitter.push(d)) this.dispatch(line);
    });
    // EPIPE after mpv died: the exit handler settles everything.
    sock.on('error', () => {});
    for (const stream of [child.stdout, child.stderr]) {
      const split = new LineSplitter();
      stream?.on('data', (d: Buffer) => {
        for (const line of split.push(d)) {
          this.stderrTail = [...this.stderrTail.slice(-9), line];
          this.emit('log', line);
        }
      });
    }
    child.on('error', (e) => this.onExit({ code: null, signal: null, error: e.message }));
    child.on('exit', (code, signal) => this.onExit({ code, signal }));
    try {
      await this.command(['get_property', 'mpv-version']);
    } catch (e) {
      const tail = this.stderrTail.join(' | ');
      this.kill();
      throw new Error(`mpv did not start: ${(e as Error).message}${tail ? ` (${tail})` : ''}`);
    }
  }

  command(args: unknown[], opts: CommandOptions = {}): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.exitInfo || !this.sock) return reject(new Error(`mpv is not running (${this.describeExit()})`));
      const id = this.nextId++;
      const ms = opts.timeoutMs ?? this.timeoutMs;
      const timer = this.clock.setTimer(ms, () => {
        if (this.pending.delete(id)) reject(new Error(`mpv ${String(args[0])}: no answer in ${ms} ms`));
      });
      this.pending.set(id, { command: args, resolve, reject, timer, onReply: opts.onReply });
      this.sock.write(JSON.stringify({ command: args, request_id: id }) + '\n');
    });
  }

  /** Starts property-change events for `name`; returns the observer id. */
  async observe(name: string): Promise<number> {
    const id = this.nextObserveId++;
    await this.command(['observe_property', id, name]);
    return id;
  }

  /** Asks mpv to quit, then SIGKILLs it if it has not gone after `graceMs`. Resolves once it exited. */
  async stop(graceMs = 1000): Promise<void> {
    if (!this.child || this.exitInfo) return;
    const exited = new Promise<void>((r) => this.ee.once('exit', () => r()));
    this.command(['quit'], { timeoutMs: graceMs }).catch(() => {});
    const t = this.clock.setTimer(graceMs, () => this.kill());
    await exited;
    t.cancel();
  }

  /** SIGKILL; the 'exit' event follows. */
  kill(): void {
    if (this.child && !this.exitInfo) this.child.kill('SIGKILL');
  }

  private describeExit(): string {
    const x = this.exitInfo;
    if (!x) return 'not started';
    return x.error ?? `exited code=${x.code} signal=${x.signal}`;
  }

  private onExit(x: MpvExit): void {
    if (this.exitInfo) return;
    this.exitInfo = x;
    const err = new Error(`mpv exited (${this.describeExit()})`);
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.timer.cancel();
      p.reject(err);
    }
    this.sock?.destroy();
    this.emit('exit', x);
  }

  private dispatch(line: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      this.ctx.log.warn({ line: line.slice(0, 200) }, 'mpv: unparsable IPC line');
      return;
    }
    if (typeof msg.event === 'string') return this.dispatchEvent(msg);
    const id = msg.request_id;
    if (typeof id !== 'number') return;
    const p = this.pending.get(id);
    if (!p) return; // timed out already
    this.pending.delete(id);
    p.timer.cancel();
    if (msg.error === 'success') {
      try {
        p.onReply?.(msg.data);
      } catch (e) {
        this.ctx.log.error({ err: e }, 'mpv: onReply hook threw');
      }
      p.resolve(msg.data);
    } else {
      p.reject(new MpvCommandError(p.command, String(msg.error)));
    }
  }

  private dispatchEvent(msg: Record<string, unknown>): void {
    const entry = typeof msg.playlist_entry_id === 'number' ? msg.playlist_entry_id : undefined;
    switch (msg.event) {
      case 'start-file':
        this.emit('start-file', { playlistEntryId: entry });
        break;
      case 'file-loaded':
        this.emit('file-loaded');
        break;
      case 'playback-restart':
        this.emit('playback-restart');
        break;
      case 'end-file': {
        const reason = (['eof', 'stop', 'quit', 'error', 'redirect'] as const).find((r) => r === msg.reason) ?? 'unknown';
        const e: EndFileEvent = { reason, playlistEntryId: entry };
        if (typeof msg.file_error === 'string') e.fileError = msg.file_error;
        this.emit('end-file', e);
        break;
      }
      case 'property-change':
        this.emit('property-change', String(msg.name), msg.data);
        break;
    }
    this.emit('event', msg);
  }
}
