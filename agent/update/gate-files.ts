import { mkdir, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../fsx/atomic.js';

// The files the agent and the health gate (provisioning/update-gate.sh, a shell script outside
// every release, so a broken release cannot break its own rollback) share in dataDir/update/.
// key=value lines, so the gate reads them with sed alone.
//
//   pending      written before the switch: to, from, deadline (Unix s), maxStarts
//   starts       how often the gate saw the unit start while pending (the gate's)
//   healthy      the version that proved itself (the agent's)
//   rolled-back  written by the gate after a rollback: from, to, reason, at

export interface Pending {
  to: string;
  from: string;
  /** Unix seconds: past it, a release that has not written `healthy` is rolled back. */
  deadline: number;
  maxStarts: number;
}

export interface RolledBack {
  from: string;
  to: string;
  reason: string;
  at: number;
}

function parseKv(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) m.set(line.slice(0, i), line.slice(i + 1));
  }
  return m;
}

const kv = (o: Record<string, string | number>): string =>
  Object.entries(o)
    .map(([k, v]) => `${k}=${String(v).replace(/[\r\n]/g, ' ')}\n`)
    .join('');

export class GateFiles {
  constructor(readonly dir: string) {}

  private p(name: string): string {
    return path.join(this.dir, name);
  }

  private async read(name: string): Promise<Map<string, string> | undefined> {
    try {
      return parseKv(await readFile(this.p(name), 'utf8'));
    } catch {
      return undefined;
    }
  }

  async writePending(p: Pending): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeFileAtomic(this.p('pending'), kv({ to: p.to, from: p.from, deadline: p.deadline, maxStarts: p.maxStarts }));
  }

  async pending(): Promise<Pending | undefined> {
    const m = await this.read('pending');
    if (!m) return undefined;
    return { to: m.get('to') ?? '', from: m.get('from') ?? '', deadline: Number(m.get('deadline')), maxStarts: Number(m.get('maxStarts')) };
  }

  async rolledBack(): Promise<RolledBack | undefined> {
    const m = await this.read('rolled-back');
    if (!m) return undefined;
    return { from: m.get('from') ?? '', to: m.get('to') ?? '', reason: m.get('reason') ?? '', at: Number(m.get('at')) };
  }

  async healthyVersion(): Promise<string | undefined> {
    try {
      return (await readFile(this.p('healthy'), 'utf8')).trim() || undefined;
    } catch {
      return undefined;
    }
  }

  /** The running release proved itself: written first, then the pending update is cleared. */
  async markHealthy(version: string): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeFileAtomic(this.p('healthy'), `${version}\n`);
    await this.remove('pending', 'starts');
  }

  async remove(...names: Array<'pending' | 'starts' | 'healthy' | 'rolled-back'>): Promise<void> {
    for (const n of names) await unlink(this.p(n)).catch(() => undefined);
  }
}
