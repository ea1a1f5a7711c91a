import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLIP_DIR } from './clips.js';
import type { Teardown } from './tmp.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const AGENT_BIN = path.join(root, 'dist/agent/main.js');
/** The Node options the shipped unit runs the agent with. */
export const AGENT_NODE_OPTIONS = '--max-semi-space-size=1 --max-old-space-size=128';

export function sha256File(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/**
 * Calls `fn` with each whole line `stream` gives, without its newline. A pipe's chunks end anywhere,
 * so a line split across two chunks is kept until its newline comes (an unfinished last line is not
 * a line).
 */
export function onLines(stream: NodeJS.ReadableStream, fn: (line: string) => void): void {
  let buf = '';
  stream.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      fn(line);
    }
  });
}

/** The child's pino lines parsed into `lines` (a line that is not JSON as `{msg}`), stderr as `{msg: 'stderr: …'}`. */
export function collectLines(child: ChildProcess, lines: Array<Record<string, unknown>>): void {
  onLines(child.stdout!, (line) => {
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      lines.push({ msg: line });
    }
  });
  child.stderr!.on('data', (d: Buffer) => lines.push({ msg: `stderr: ${d.toString()}` }));
}

/**
 * The agent as installers run it: `signage-agent run --config`, a child process with its own
 * dataDir, headless mpv and the test's broker. Its pino lines are parsed so tests can wait on them.
 */
export class AgentProcess {
  readonly lines: Array<Record<string, unknown>> = [];
  /**
   * Tests read debug lines; a scenario that floods the agent runs it at the unit's level instead:
   * pino writes stdout synchronously, so 2,000 debug lines a second into this process's pipe
   * reader stall the agent on the test harness, not on anything a deployed screen does.
   */
  logLevel: 'debug' | 'info' = 'debug';
  /** NOTIFY_SOCKET for the agent, as systemd would pass it; empty (no notifications) by default. */
  notifySocket = '';
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> = Promise.resolve(null);
  readonly configFile: string;

  constructor(
    readonly dir: string,
    readonly deviceId: string,
    brokerUrl: string,
    extra: Record<string, unknown> = {},
  ) {
    this.configFile = path.join(dir, `${deviceId}.json`);
    const config = {
      deviceId,
      groups: ['all', 'site-1'],
      timezone: 'Asia/Ho_Chi_Minh',
      dataDir: path.join(dir, `${deviceId}-data`),
      heartbeatSec: 5,
      mqtt: { url: brokerUrl, reconnectMinMs: 200, reconnectMaxMs: 2000, keepaliveSec: 5 },
      player: { args: ['--vo=null', '--ao=null'] },
      // file:// clips come from the shared clip dir or the test's own dir, http media from a
      // server on loopback: each allowed explicitly, as a site lists its own (issue 10).
      media: { fileRoots: [CLIP_DIR, dir], allowHosts: ['127.0.0.1'] },
      ...extra,
    };
    writeFileSync(this.configFile, JSON.stringify(config, null, 2));
  }

  start(): void {
    const child = spawn(process.execPath, [AGENT_BIN, 'run', '--config', this.configFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
      // NODE_OPTIONS as systemd/signage-agent.service sets it (units.test.ts checks the unit).
      env: { ...process.env, NODE_OPTIONS: AGENT_NODE_OPTIONS, LOG_LEVEL: this.logLevel, LOG_PRETTY: '0', DISPLAY: '', WAYLAND_DISPLAY: '', NOTIFY_SOCKET: this.notifySocket },
    });
    this.child = child;
    collectLines(child, this.lines);
    this.exited = new Promise((r) => child.once('exit', (code) => r(code)));
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  logged(msg: string): Array<Record<string, unknown>> {
    return this.lines.filter((l) => l.msg === msg);
  }

  /** SIGTERM: the orderly stop; resolves with the exit code. */
  async stop(): Promise<number | null> {
    this.child?.kill('SIGTERM');
    return this.exited;
  }

  /** kill -9: what a crash or a power cut looks like to the store and the broker. */
  async kill9(): Promise<void> {
    this.child?.kill('SIGKILL');
    await this.exited;
  }

  register(t: Teardown): this {
    t.teardown(async () => {
      if (process.env.E2E_DEBUG) for (const l of this.lines) process.stderr.write(`[${this.deviceId}] ${JSON.stringify(l).slice(0, 400)}\n`);
      if (this.child && this.child.exitCode === null && this.child.signalCode === null) {
        this.child.kill('SIGKILL');
        await this.exited;
      }
    });
    return this;
  }
}
