import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { DEFAULT_ALERT_FONT, drawtextFilter, layoutText } from '../agent/alerts/text-card.js';
import { type AlertEvent, command, isRed, iso, onAir, shot, stage } from './helpers/alert-stage.js';
import { type PlayMsg } from './helpers/e2e.js';
import { ctl } from './helpers/ctl.js';
import { greyPixels, meanAbsDiff } from './helpers/frames.js';
import { waitFor } from './helpers/wait.js';

// PROTOCOL §10 on the whole agent: real mosquitto, real headless mpv, real SQLite. An alert on
// arrival and a text alert here; alerts at a set instant and repeated in agent-alert-schedule.

const run = promisify(execFile);

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
