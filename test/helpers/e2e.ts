import { makeClip } from './clips.js';
import { sha256File } from './agent-proc.js';

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
