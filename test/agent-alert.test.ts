import { writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { AgentProcess, sha256File } from './helpers/agent-proc.js';
import { makeClip } from './helpers/clips.js';
import { windowFromNow, type PlayMsg } from './helpers/e2e.js';
import { meanRgb } from './helpers/frames.js';
import { Observer } from './helpers/link-rig.js';
import { startBroker } from './helpers/mosquitto.js';
import { tempDir, type Teardown } from './helpers/tmp.js';
import { waitFor } from './helpers/wait.js';

// PROTOCOL §10 on the whole agent: real mosquitto, real headless mpv, real SQLite.

interface AlertEvent { type: string; detail: { id: string; state: 'started' | 'ended'; reason?: string } }

async function stage(t: Teardown, o: { windowSec: number; timesPerDay: number; leadMs: number }) {
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

type Stage = Awaited<ReturnType<typeof stage>>;

async function command(s: Stage, id: string, name: string, args?: Record<string, unknown>): Promise<{ ok: boolean; result?: Record<string, unknown>; error?: string }> {
  const cid = `c-${Math.random().toString(36).slice(2)}`;
  await s.obs.publish(`signage/device/${id}/cmd`, JSON.stringify({ id: cid, name, ...(args ? { args } : {}) }));
  await waitFor(`answer to ${name}`, () => s.of<{ id: string }>(id, 'cmd/result').some((r) => r.id === cid), 20_000);
  return s.of<{ id: string; ok: boolean; result?: Record<string, unknown>; error?: string }>(id, 'cmd/result').find((r) => r.id === cid)!;
}

/** The screen's frame now, as a PNG file, and its mean colour. */
async function shot(s: Stage, id: string, name: string): Promise<[number, number, number]> {
  const r = await command(s, id, 'screenshot');
  if (!r.ok) throw new Error(`screenshot failed: ${r.error}`);
  const file = path.join(s.dir, `${name}.png`);
  writeFileSync(file, Buffer.from(String(r.result?.png), 'base64'));
  return meanRgb(file);
}

const isRed = ([r, g, b]: [number, number, number]): boolean => r > 180 && g < 60 && b < 60;
const iso = (ms: number): string => new Date(ms).toISOString();

t.test('an alert published mid-spot takes the screen at once, the spot is interrupted, expiry restores the campaign', async (t) => {
  // Two 8 s plays in a 50 s window; the first is cut by a 10 s alert, the two owed are re-spread after it.
  const s = await stage(t, { windowSec: 50, timesPerDay: 2, leadMs: 3000 });
  await s.assign('al-1');
  const agent = s.agent('al-1');
  agent.start();
  await waitFor('birth', () => s.of<{ online: boolean }>('al-1', 'status').some((x) => x.online), 20_000);
  await waitFor('the spot verified', async () => (await command(s, 'al-1', 'play-now', { campaignId: 'spot' })).ok, 20_000);
  await waitFor('the spot on screen', () => agent.logged('spot started').some((l) => l.campaignId === 'spot'), 20_000);
  const spotColour = await shot(s, 'al-1', 'spot');
  t.notOk(isRed(spotColour), `the spot's frame is not the alert's red (${spotColour.map(Math.round).join(',')})`);

  const now = Date.now();
  const expiresAt = now + 10_000;
  await s.obs.publish('signage/device/al-1/alert', JSON.stringify({ version: 1, id: 'flood', media: s.red, startsAt: iso(now - 1000), expiresAt: iso(expiresAt) }), { retain: true });
  await waitFor('the spot interrupted', () => s.of<PlayMsg>('al-1', 'play').some((p) => p.campaignId === 'spot' && p.outcome === 'interrupted'), 20_000);
  await waitFor('an alert showing on screen', () => agent.logged('spot started').some((l) => l.campaignId === 'alert:flood'), 20_000);
  const alertColour = await shot(s, 'al-1', 'alert');
  t.ok(isRed(alertColour), `the screen shows the alert's red clip (${alertColour.map(Math.round).join(',')})`);
  const started = s.of<AlertEvent>('al-1', 'event').find((e) => e.type === 'alert' && e.detail.state === 'started');
  t.equal(started?.detail.id, 'flood', 'an alert event says it started');

  await waitFor('the alert ended at its expiry', () => s.of<AlertEvent>('al-1', 'event').some((e) => e.type === 'alert' && e.detail.state === 'ended'), 30_000);
  const ended = s.of<AlertEvent>('al-1', 'event').find((e) => e.type === 'alert' && e.detail.state === 'ended');
  t.equal(ended?.detail.reason, 'expired');
  await waitFor('the last showing closed', () => s.of<PlayMsg>('al-1', 'play').filter((p) => p.campaignId === 'alert:flood').length >= 2, 20_000);
  const showings = s.of<PlayMsg>('al-1', 'play').filter((p) => p.campaignId === 'alert:flood');
  t.ok(showings.some((p) => p.outcome === 'completed'), 'the 3 s clip looped: completed showings, each a play event');
  t.ok(showings.every((p) => Date.parse(p.endedAt) <= expiresAt + 1000), `no showing runs past expiresAt (${showings.map((p) => Date.parse(p.endedAt) - expiresAt).join(', ')} ms)`);
  t.ok(showings.every((p) => p.inWindow === false && p.mediaSha256 === s.red.sha256), 'showings are not campaign plays');

  // The window allows both owed plays after the alert: the target is still met.
  await waitFor('two completed spots after the alert', () => s.of<PlayMsg>('al-1', 'play').filter((p) => p.campaignId === 'spot' && p.outcome === 'completed').length >= 2, 60_000);
  const spots = s.of<PlayMsg>('al-1', 'play').filter((p) => p.campaignId === 'spot' && p.outcome === 'completed');
  t.ok(spots.every((p) => Date.parse(p.startedAt) >= expiresAt), 'campaign plays resumed after the alert, none during it');
  t.equal(spots.at(-1)?.played, 2, 'target met: played 2 of 2');
  const loopColour = await shot(s, 'al-1', 'after');
  t.notOk(isRed(loopColour), 'the alert is off the screen');
  t.equal(await agent.stop(), 0);
});
