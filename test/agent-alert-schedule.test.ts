import t from 'tap';
import { type AlertEvent, isRed, iso, onAir, shot, stage } from './helpers/alert-stage.js';
import { type PlayMsg } from './helpers/e2e.js';
import { ctl } from './helpers/ctl.js';
import { waitFor } from './helpers/wait.js';

// PROTOCOL §10 on the whole agent, alerts in time: one staged ahead that fires with the broker
// down after a restart, and one repeated every N seconds. Real mosquitto, headless mpv, SQLite.

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
