import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ReleaseLayout } from '../../agent/update/layout.js';
import { AGENT_NODE_OPTIONS, collectLines } from './agent-proc.js';
import { CLIP_DIR } from './clips.js';
import { REPO } from './release-rig.js';
import { sleep } from './wait.js';
import { tempDir, type Teardown } from './tmp.js';

const run = promisify(execFile);
const GATE = path.join(REPO, 'provisioning', 'update-gate.sh');

/**
 * A screen installed in the release layout under a temp root, run the way signage-agent.service
 * runs it, without systemd (this machine has none running): before every start the gate script
 * (the unit's ExecStartPre), then node on releases/current/dist/agent/main.js (the wrapper's
 * path), restarted 0.5 s after any exit (Restart=always, RestartSec shortened from 5 s).
 */
export class SupervisedBox {
  readonly root: string;
  readonly releases: string;
  readonly dataDir: string;
  readonly configFile: string;
  /** Every run: the release current named at its start, and its parsed log lines. */
  readonly runs: Array<{ version: string; lines: Array<Record<string, unknown>>; exit?: number | null }> = [];
  private child: ChildProcess | undefined;
  private stopped = false;
  private looping: Promise<void> | undefined;

  constructor(t: Teardown, readonly deviceId: string, brokerUrl: string, config: Record<string, unknown>) {
    this.root = tempDir(t, `box-${deviceId}-`);
    this.releases = path.join(this.root, 'opt/signage-agent/releases');
    this.dataDir = path.join(this.root, 'var/lib/signage-agent');
    this.configFile = path.join(this.root, 'etc/signage-agent/signage-agent.json');
    mkdirSync(this.releases, { recursive: true });
    mkdirSync(path.dirname(this.configFile), { recursive: true });
    mkdirSync(this.dataDir, { recursive: true });
    const u = (config.update ?? {}) as Record<string, unknown>;
    const full = {
      deviceId,
      timezone: 'Asia/Ho_Chi_Minh',
      heartbeatSec: 5,
      mqtt: { url: brokerUrl, reconnectMinMs: 200, reconnectMaxMs: 2000, keepaliveSec: 5 },
      player: { args: ['--vo=null', '--ao=null'] },
      ...config,
      media: { fileRoots: [CLIP_DIR, '/tmp'], allowHosts: ['127.0.0.1'] },
      dataDir: this.dataDir,
      update: { ...u, releasesDir: this.releases },
    };
    writeFileSync(this.configFile, JSON.stringify(full, null, 2));
    t.teardown(() => this.stop());
  }

  /** Release `file` unpacked as releases/{version} and made current, as install.sh does. */
  async install(file: string, version: string): Promise<void> {
    mkdirSync(path.join(this.releases, version));
    await run('tar', ['-xzf', file, '-C', path.join(this.releases, version)]);
    await new ReleaseLayout(this.releases).relink('current', version);
  }

  linked(name: 'current' | 'previous'): string | undefined {
    try {
      return readlinkSync(path.join(this.releases, name));
    } catch {
      return undefined;
    }
  }

  start(): void {
    this.looping = this.loop();
  }

  lines(): Array<Record<string, unknown> & { version: string }> {
    return this.runs.flatMap((r) => r.lines.map((l) => ({ ...l, version: r.version })));
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      await run('sh', [GATE, 'start', '--releases', this.releases, '--state', path.join(this.dataDir, 'update')]);
      const version = this.linked('current') ?? '?';
      const entry: (typeof this.runs)[number] = { version, lines: [] };
      this.runs.push(entry);
      const child = spawn(process.execPath, [path.join(this.releases, 'current', 'dist', 'agent', 'main.js'), 'run', '--config', this.configFile], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, NODE_OPTIONS: AGENT_NODE_OPTIONS, LOG_LEVEL: 'info', LOG_PRETTY: '0', DISPLAY: '', WAYLAND_DISPLAY: '', NOTIFY_SOCKET: '' },
      });
      this.child = child;
      collectLines(child, entry.lines);
      entry.exit = await new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      if (process.env.E2E_DEBUG) for (const l of entry.lines) process.stderr.write(`[${this.deviceId} ${version}] ${JSON.stringify(l).slice(0, 300)}\n`);
      if (!this.stopped) await sleep(500);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const c = this.child;
    if (c && c.exitCode === null && c.signalCode === null) {
      c.kill('SIGTERM');
      // As systemd's TimeoutStopSec: an agent that does not stop is killed.
      const kill = setTimeout(() => c.kill('SIGKILL'), 20_000);
      await this.looping;
      clearTimeout(kill);
    }
    await this.looping;
  }
}
