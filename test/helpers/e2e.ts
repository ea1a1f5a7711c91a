import { AgentProcess, sha256File } from './agent-proc.js';
import { makeClip } from './clips.js';
import { Observer } from './link-rig.js';
import { startBroker, type Broker } from './mosquitto.js';
import { tempDir, type Teardown } from './tmp.js';

/** Clips for agent-level tests: a 2 s moving spot and a 3 s loop, with their hashes. */
export async function e2eClips(): Promise<{ spot: { url: string; sha256: string }; loop: { url: string; sha256: string } }> {
  const spot = await makeClip({ kind: 'pattern', seconds: 2, size: '160x120' });
  const loop = await makeClip({ kind: 'pattern', seconds: 3, size: '176x144' });
  return {
    spot: { url: `file://${spot}`, sha256: sha256File(spot) },
    loop: { url: `file://${loop}`, sha256: sha256File(loop) },
  };
}

export interface PlayMsg {
  eventId: string;
  seq: number;
  storeId: string;
  deviceId: string;
  campaignId: string;
  mediaSha256: string;
  day: string;
  scheduledAt: string;
  startedAt: string;
  endedAt: string;
  durationMs: number;
  outcome: 'completed' | 'interrupted' | 'failed';
  inWindow: boolean;
  played: number;
  target: number;
  display: string;
  clockSynced: boolean;
}

/** Local HH:MM:SS in Asia/Ho_Chi_Minh (UTC+7, no DST) of an instant. */
export function hcmTime(at: number): string {
  return new Date(at + 7 * 3600_000).toISOString().slice(11, 19);
}

/**
 * A window of `seconds` starting `leadMs` from now, as local `HH:MM:SS-HH:MM:SS` in
 * Asia/Ho_Chi_Minh: a test campaign whose grid starts in the future is on track from its first
 * slot (a whole-day window would start the test far behind and in catch-up).
 */
export function windowFromNow(leadMs: number, seconds: number): { window: string; start: number } {
  const start = Math.ceil((Date.now() + leadMs) / 1000) * 1000;
  const from = hcmTime(start);
  const endAt = start + seconds * 1000;
  const to = hcmTime(endAt) < from ? '24:00:00' : hcmTime(endAt);
  return { window: `${from}-${to}`, start };
}

export interface Scene {
  broker: Broker;
  /** The NOC's view: every message under signage/#. */
  obs: Observer;
  dir: string;
  clips: Awaited<ReturnType<typeof e2eClips>>;
  window: { window: string; start: number };
  /** A new agent process (not started) with the scene's broker and dataDir parent. */
  agent(deviceId: string): AgentProcess;
  plays(deviceId: string): PlayMsg[];
  messages<T>(deviceId: string, suffix: string): T[];
}

/**
 * The common stage of agent-level tests: a broker, an observer, the clips, and one campaign
 * `spot` (2 s clip, on the 3 s loop) assigned retained on `assignTo` (`device/ID` or
 * `group/G`) with `timesPerDay` plays in a window of `windowSec` starting `leadMs` from now.
 */
export async function scene(t: Teardown, o: { assignTo: string; timesPerDay: number; windowSec: number; leadMs?: number; version?: number }): Promise<Scene> {
  const broker = await startBroker(t);
  const obs = await Observer.connect(t, broker.url, ['signage/#']);
  const clips = await e2eClips();
  const dir = tempDir(t, 'e2e-');
  const window = windowFromNow(o.leadMs ?? 4000, o.windowSec);
  await obs.publish(`signage/${o.assignTo}/assignment`, JSON.stringify({
    version: o.version ?? 1,
    campaigns: [{ id: 'spot', media: { ...clips.spot, durationMs: 2000 }, timesPerDay: o.timesPerDay, windows: [window.window] }],
    loop: [clips.loop],
  }), { retain: true });
  const messages = <T>(id: string, suffix: string): T[] => obs.got.filter((m) => m.topic === `signage/device/${id}/${suffix}`).map((m) => m.json() as T);
  return {
    broker, obs, dir, clips, window,
    agent: (id) => new AgentProcess(dir, id, broker.url).register(t),
    plays: (id) => messages<PlayMsg>(id, 'play'),
    messages,
  };
}
