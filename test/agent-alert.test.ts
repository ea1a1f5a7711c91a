import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { DEFAULT_ALERT_FONT, drawtextFilter, layoutText } from '../agent/alerts/text-card.js';
import { AgentProcess, sha256File } from './helpers/agent-proc.js';
import { makeClip } from './helpers/clips.js';
import { windowFromNow, type PlayMsg } from './helpers/e2e.js';
import { ctl } from './helpers/ctl.js';
import { greyPixels, meanAbsDiff, meanRgb } from './helpers/frames.js';
import { Observer } from './helpers/link-rig.js';
import { startBroker } from './helpers/mosquitto.js';
import { tempDir, type Teardown } from './helpers/tmp.js';
import { waitFor } from './helpers/wait.js';

// PROTOCOL §10 on the whole agent: real mosquitto, real headless mpv, real SQLite.

const run = promisify(execFile);

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

/** `id`'s assignment published, its agent started and online (its birth message seen). */
async function onAir(s: Stage, id: string): Promise<AgentProcess> {
  await s.assign(id);
  const agent = s.agent(id);
  agent.start();
  await waitFor('birth', () => s.of<{ online: boolean }>(id, 'status').some((x) => x.online), 20_000);
  return agent;
}

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
  const agent = await onAir(s, 'al-1');
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

t.test('a pre-staged alert fires on time with the broker stopped and the agent restarted in between', async (t) => {
  const s = await stage(t, { windowSec: 120, timesPerDay: 12, leadMs: 2000 });
  const a1 = await onAir(s, 'al-2');
  const startsAt = Math.ceil((Date.now() + 20_000) / 1000) * 1000;
  const r = await ctl(['alert', '--url', s.broker.url, '--device', 'al-2', '--file', new URL(s.red.url).pathname, '--starts', iso(startsAt), '--expires', '+8s', '--id', 'pre']);
  t.equal(r.code, 0, r.err.join('\n'));
  await waitFor('the alert applied', () => s.of<{ type: string; detail: { kind: string } }>('al-2', 'event').some((e) => e.type === 'applied' && e.detail.kind === 'alert'), 20_000);
  await waitFor('its clip verified at once, long before it starts', () => a1.logged('media verified').some((l) => l.sha256 === s.red.sha256), 20_000);
  t.ok(Date.now() < startsAt - 5000, 'staged ahead of its instant');
  t.equal(await a1.stop(), 0);
  await s.broker.stop();

  // A reboot with the broker down: the stored alert and its verified clip are all it needs.
  const a2 = s.agent('al-2');
  a2.start();
  await waitFor('the alert on screen', () => a2.logged('spot started').some((l) => l.campaignId === 'alert:pre'), 60_000);
  const first = a2.logged('spot started').find((l) => l.campaignId === 'alert:pre')!;
  t.ok(Number(first.time) >= startsAt, `never before its startsAt (first frame +${Number(first.time) - startsAt} ms; the figure is npm run bench -- alert)`);
  t.ok(a2.logged('alert on screen').length > 0, 'logged while offline');
  await waitFor('the alert ended', () => a2.lines.some((l) => l.msg === 'spot started' && l.campaignId === 'spot' && Number(l.time) >= startsAt + 8000), 60_000);

  await s.broker.restart();
  await waitFor('the showings reach the NOC', () => s.of<PlayMsg>('al-2', 'play').some((p) => p.campaignId === 'alert:pre'), 60_000);
  await waitFor('both alert events reach the NOC', () => s.of<AlertEvent>('al-2', 'event').filter((e) => e.type === 'alert' && e.detail.id === 'pre').length >= 2, 60_000);
  const showings = s.of<PlayMsg>('al-2', 'play').filter((p) => p.campaignId === 'alert:pre');
  t.ok(showings.every((p) => Date.parse(p.startedAt) >= startsAt && Date.parse(p.endedAt) <= startsAt + 8000 + 1000), 'every showing inside the alert');
  const spots = s.of<PlayMsg>('al-2', 'play').filter((p) => p.campaignId === 'spot');
  t.ok(spots.every((p) => Date.parse(p.endedAt) <= startsAt + 1000 || Date.parse(p.startedAt) >= startsAt + 8000 || p.outcome === 'interrupted'), 'no campaign play inside the alert');
  t.equal(await a2.stop(), 0);
});

t.test('an alert with --repeat-every is shown once every that many seconds, the house content playing in between', async (t) => {
  // One spot a day far ahead: between showings the screen has only its loop to play.
  const s = await stage(t, { windowSec: 600, timesPerDay: 1, leadMs: 300_000 });
  const agent = await onAir(s, 'al-4');
  const r = await ctl(['alert', '--url', s.broker.url, '--device', 'al-4', '--file', new URL(s.red.url).pathname, '--expires', '+26s', '--repeat-every', '10', '--id', 'rep']);
  t.equal(r.code, 0, r.err.join('\n'));
  const showings = (): PlayMsg[] => s.of<PlayMsg>('al-4', 'play').filter((p) => p.campaignId === 'alert:rep');

  await waitFor('the first showing over', () => showings().length >= 1, 30_000);
  // The next showing is due 10 s after the first started, its 3 s clip long over: the loop plays.
  const between = await shot(s, 'al-4', 'between');
  const secondYet = showings().length > 1 || agent.logged('spot started').filter((l) => l.campaignId === 'alert:rep').length > 1;
  if (!secondYet) t.notOk(isRed(between), `between showings the alert is off the screen (${between.map(Math.round).join(',')})`);
  else t.fail('the second showing began before the screenshot between the first two');

  await waitFor('the alert ended at its expiry', () => s.of<AlertEvent>('al-4', 'event').some((e) => e.type === 'alert' && e.detail.id === 'rep' && e.detail.state === 'ended'), 60_000);
  await waitFor('every showing reported', () => showings().length >= agent.logged('spot started').filter((l) => l.campaignId === 'alert:rep').length, 20_000);
  const all = showings().sort((a, b) => Date.parse(a.startedAt) - Date.parse(b.startedAt));
  t.ok(all.length >= 2 && all.length <= 3, `a 26 s alert repeated every 10 s is shown 2 or 3 times, not looped (${all.length})`);
  t.ok(all.every((p) => p.outcome === 'completed' && p.mediaSha256 === s.red.sha256), 'each showing a completed pass of the alert clip');
  const gaps = all.slice(1).map((p, i) => Date.parse(p.startedAt) - Date.parse(all[i]!.startedAt));
  // The grid counts from when a showing went into the player; its reported start may trail that a little.
  t.ok(gaps.every((g) => g >= 9_500), `showings start 10 s apart, never sooner (${gaps.join(', ')} ms)`);
  t.equal(await agent.stop(), 0);
});

/** Grey pixels of a card as the agent draws `text` (same layout, font and filter), or of a variant of the text. */
async function reference(dir: string, name: string, lines: string[], fontSize: number): Promise<Buffer> {
  const txt = path.join(dir, `${name}.txt`);
  const png = path.join(dir, `${name}.png`);
  writeFileSync(txt, lines.join('\n'));
  await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'color=c=0x8b0000:s=1920x1080', '-frames:v', '1', '-vf', drawtextFilter(txt, DEFAULT_ALERT_FONT, fontSize), png]);
  return greyPixels(png, 480, 270);
}

t.test('a text alert is rendered full screen with its Vietnamese letters (not blank, not boxes)', async (t) => {
  const s = await stage(t, { windowSec: 600, timesPerDay: 2, leadMs: 300_000 });
  const agent = await onAir(s, 'al-3');
  const text = 'CẢNH BÁO LŨ: Đường Hoàng Diệu ngập sâu, tránh khu vực này';
  const r = await ctl(['alert', '--url', s.broker.url, '--fleet', '--text', text, '--expires', '+2m', '--id', 'flood-text']);
  t.equal(r.code, 0, r.err.join('\n'));
  await waitFor('the text card on screen', () => agent.logged('spot started').some((l) => l.campaignId === 'alert:flood-text'), 60_000);
  const r2 = await command(s, 'al-3', 'screenshot');
  t.ok(r2.ok, r2.error ?? '');
  const file = path.join(s.dir, 'text.png');
  writeFileSync(file, Buffer.from(String(r2.result?.png), 'base64'));
  const screen = await greyPixels(file, 480, 270);

  const { lines, fontSize } = layoutText(text);
  const right = await reference(s.dir, 'right', lines, fontSize);
  // The same letters without their marks, and with each accented letter as a glyph the font lacks (a box).
  const bare = await reference(s.dir, 'bare', lines.map((l) => l.normalize('NFD').replace(/\p{M}/gu, '').replace(/Đ/g, 'D').replace(/đ/g, 'd')), fontSize);
  const boxes = await reference(s.dir, 'boxes', lines.map((l) => [...l].map((c) => (/[^\x00-\x7f]/.test(c) ? '\u{E000}' : c)).join('')), fontSize);
  const bright = [...screen].filter((v) => v > 160).length / screen.length;
  t.ok(bright > 0.03, `text drawn: ${(bright * 100).toFixed(1)}% of the frame is bright`);
  const dRight = meanAbsDiff(screen, right);
  const dBare = meanAbsDiff(screen, bare);
  const dBoxes = meanAbsDiff(screen, boxes);
  t.ok(dRight < 4, `the screen matches the text rendered with the same font (mean diff ${dRight.toFixed(2)})`);
  t.ok(dRight < dBare / 2, `diacritics drawn: closer to the accented text (${dRight.toFixed(2)}) than to the bare letters (${dBare.toFixed(2)})`);
  t.ok(dRight < dBoxes / 2, `no tofu: closer to the real glyphs (${dRight.toFixed(2)}) than to missing-glyph boxes (${dBoxes.toFixed(2)})`);

  const pn = await command(s, 'al-3', 'play-now', { campaignId: 'spot' });
  t.equal(pn.ok, false, 'nothing plays over an alert');
  t.match(pn.error, /alert flood-text is on screen until .*: play-now refused/);

  const clear = await ctl(['alert', '--url', s.broker.url, '--fleet', '--clear']);
  t.equal(clear.code, 0, clear.err.join('\n'));
  await waitFor('cleared: the alert ended', () => s.of<AlertEvent>('al-3', 'event').some((e) => e.type === 'alert' && e.detail.state === 'ended' && e.detail.reason === 'cleared'), 30_000);
  await waitFor('the showing cut', () => s.of<PlayMsg>('al-3', 'play').some((p) => p.campaignId === 'alert:flood-text' && p.outcome === 'interrupted'), 30_000);
  t.equal(await agent.stop(), 0);
});
