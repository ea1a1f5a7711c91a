import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { AgentProcess, sha256File } from './agent-proc.js';
import { makeClip } from './clips.js';
import { meanRgb } from './frames.js';
import { windowFromNow } from './e2e.js';
import { Observer } from './link-rig.js';
import { startBroker } from './mosquitto.js';
import { tempDir, type Teardown } from './tmp.js';
import { waitFor } from './wait.js';

// The alert tests' stage: a real broker, an observer on signage/#, three clips (an 8 s spot, a
// 3 s loop, a 3 s red alert) and agents started against them. Shared by agent-alert and
// agent-alert-schedule, split in two so that each file stays well inside tap's 120 s a file.

export interface AlertEvent { type: string; detail: { id: string; state: 'started' | 'ended'; reason?: string } }

export async function stage(t: Teardown, o: { windowSec: number; timesPerDay: number; leadMs: number }) {
  const broker = await startBroker(t);
  const obs = await Observer.connect(t, broker.url, ['signage/#']);
  const spotFile = await makeClip({ kind: 'pattern', seconds: 8, size: '160x120' });
  const loopFile = await makeClip({ kind: 'pattern', seconds: 3, size: '176x144' });
  const redFile = await makeClip({ kind: 'red', seconds: 3, size: '160x120' });
  const clip = (f: string) => ({ url: `file://${f}`, sha256: sha256File(f) });
  const dir = tempDir(t, 'alert-');
  const window = windowFromNow(o.leadMs, o.windowSec);
  return {
    broker, obs, dir, window,
    spot: clip(spotFile), loop: clip(loopFile), red: clip(redFile),
    assign: (id: string) =>
      obs.publish(`signage/device/${id}/assignment`, JSON.stringify({
        version: 1,
        campaigns: [{ id: 'spot', media: { ...clip(spotFile), durationMs: 8000 }, timesPerDay: o.timesPerDay, windows: [window.window] }],
        loop: [clip(loopFile)],
      }), { retain: true }),
    agent: (id: string) => new AgentProcess(dir, id, broker.url).register(t),
    of: <T>(id: string, suffix: string): T[] => obs.got.filter((m) => m.topic === `signage/device/${id}/${suffix}`).map((m) => m.json() as T),
  };
}

export type Stage = Awaited<ReturnType<typeof stage>>;

/** `id`'s assignment published, its agent started and online (its birth message seen). */
export async function onAir(s: Stage, id: string): Promise<AgentProcess> {
  await s.assign(id);
  const agent = s.agent(id);
  agent.start();
  await waitFor('birth', () => s.of<{ online: boolean }>(id, 'status').some((x) => x.online), 20_000);
  return agent;
}

export async function command(s: Stage, id: string, name: string, args?: Record<string, unknown>): Promise<{ ok: boolean; result?: Record<string, unknown>; error?: string }> {
  const cid = `c-${Math.random().toString(36).slice(2)}`;
  await s.obs.publish(`signage/device/${id}/cmd`, JSON.stringify({ id: cid, name, ...(args ? { args } : {}) }));
  await waitFor(`answer to ${name}`, () => s.of<{ id: string }>(id, 'cmd/result').some((r) => r.id === cid), 20_000);
  return s.of<{ id: string; ok: boolean; result?: Record<string, unknown>; error?: string }>(id, 'cmd/result').find((r) => r.id === cid)!;
}

/** The screen's frame now, as a PNG file, and its mean colour. */
export async function shot(s: Stage, id: string, name: string): Promise<[number, number, number]> {
  const r = await command(s, id, 'screenshot');
  if (!r.ok) throw new Error(`screenshot failed: ${r.error}`);
  const file = path.join(s.dir, `${name}.png`);
  writeFileSync(file, Buffer.from(String(r.result?.png), 'base64'));
  return meanRgb(file);
}

export const isRed = ([r, g, b]: [number, number, number]): boolean => r > 180 && g < 60 && b < 60;
export const iso = (ms: number): string => new Date(ms).toISOString();
