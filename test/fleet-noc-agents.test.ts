// The NOC page against real agents (dist/agent/main.js, headless mpv) on a real mosquitto, in a
// real headless Chromium: the grid lists them; a kill -9 turns a tile offline when the Will
// arrives, pushed over SSE to the open page (no reload); the screen's page runs the §7 screenshot
// and shows the agent's PNG; the report page's numbers are the archive's.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { groupTopic } from '../agent/protocol/index.js';
import { AGENT_BIN, AgentProcess } from './helpers/agent-proc.js';
import { docScreenshot, startBrowser } from './helpers/browser.js';
import { e2eClips, windowFromNow } from './helpers/e2e.js';
import { count, fleetConfig, screenClient, startFleet } from './helpers/fleet-rig.js';
import { startBroker } from './helpers/mosquitto.js';
import { tempDir } from './helpers/tmp.js';
import { waitFor } from './helpers/wait.js';

const IMG = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../docs/img');

t.test('real agents on the NOC page: grid, kill -9 → offline live, screenshot, report = archive', { skip: existsSync(AGENT_BIN) ? false : 'dist/ not built (npm test builds it)' }, async (t) => {
  const broker = await startBroker(t);
  const dir = tempDir(t, 'noc-agents-');
  const fleet = await startFleet(t, fleetConfig(dir, broker.url, 'ingest-noc', { http: { port: 0 }, groups: { 'site-1': ['noc-a', 'noc-b'], lobby: ['noc-a'] } }));
  await waitFor('ingest connected', () => fleet.ingest.connected);
  const ops = await screenClient(t, broker.url);
  const clips = await e2eClips();
  const w = windowFromNow(3000, 900);
  await ops.publishAsync(groupTopic('signage', 'all', 'assignment'), JSON.stringify({
    version: 1,
    campaigns: [{ id: 'spot', media: { ...clips.spot, durationMs: 2000 }, timesPerDay: 150, windows: [w.window] }],
    loop: [clips.loop],
  }), { qos: 1, retain: true });
  const a = new AgentProcess(dir, 'noc-a', broker.url).register(t);
  const b = new AgentProcess(dir, 'noc-b', broker.url).register(t);
  a.start();
  b.start();
  const q = <T>(fn: Parameters<typeof fleet.archive.read<T>>[0]): Promise<T> => fleet.archive.read(fn);
  for (const id of ['noc-a', 'noc-b']) {
    await waitFor(`${id}: two completed plays and a plan archived`, async () =>
      (await q((d) => count(d, "SELECT COUNT(*) AS n FROM plays WHERE device_id = ? AND outcome = 'completed'", [id]))) >= 2
      && (await q((d) => count(d, 'SELECT COUNT(*) AS n FROM compliance WHERE device_id = ?', [id]))) >= 1, 60_000);
  }

  const { page, errors } = await startBrowser(t);
  const grid = await page({ width: 1100, height: 520 });
  await grid.goto(`${fleet.http!.url}/`);
  for (const id of ['noc-a', 'noc-b']) await grid.locator(`.tile[data-device="${id}"][data-state="online"]`).waitFor({ timeout: 30_000 });
  t.same(await grid.locator('.tile .id').allTextContents(), ['noc-a', 'noc-b'], 'one tile per agent');
  t.equal(await grid.locator('.tile meter').count(), 2, 'each with today\'s compliance bar');
  t.match(await grid.locator('.tile[data-device="noc-a"]').textContent(), /\d+\/150 \(\d+%\)heartbeat \d+s ago/, 'played/target and the heartbeat age');
  await grid.evaluate(() => { (globalThis as unknown as { __sameDocument: boolean }).__sameDocument = true; });

  await b.kill9();
  await grid.locator('.tile[data-device="noc-b"][data-state="offline"]').waitFor({ timeout: 45_000 });
  t.pass('noc-b turned offline on the open page after kill -9 (its Will)');
  t.equal(await grid.evaluate(() => (globalThis as unknown as { __sameDocument?: boolean }).__sameDocument), true, 'without a reload: pushed over SSE');
  t.equal(await grid.locator('[data-count="offline"]').textContent(), '1');
  t.equal(await grid.locator('[data-count="online"]').textContent(), '1');
  t.equal(await q((d) => count(d, "SELECT status_online AS n FROM devices WHERE device_id = 'noc-b'")), 0, 'the archive has the Will');
  if (await docScreenshot(grid, path.join(IMG, 'noc-grid.png'))) t.pass('docs/img/noc-grid.png written');

  const sp = await page({ width: 1100, height: 900 });
  await sp.goto(`${fleet.http!.url}/screen?id=noc-a`);
  await sp.locator('#plays tbody tr').first().waitFor();
  t.ok(await sp.locator('#timeline .play.completed').count() >= 2, 'plays on the timeline');
  t.ok((await sp.locator('#heartbeat th').allTextContents()).includes('player.state'), 'the last heartbeat, field by field');
  // The loop clip starts once its media is verified: until then mpv has no frame, and the button says so.
  let src: string | null = null;
  for (let i = 0; i < 10 && !src; i++) {
    await sp.click('#shot');
    await waitFor('the screenshot answered', async () => !(await sp.locator('#shot').isDisabled()), 30_000, 50);
    if (await sp.locator('#shot-img').isVisible()) src = await sp.locator('#shot-img').getAttribute('src');
    else t.comment(`screenshot: ${await sp.locator('#shot-status').textContent()}`);
  }
  t.ok(src?.startsWith('data:image/png;base64,'), 'the screenshot shows as a PNG');
  const png = Buffer.from((src ?? '').slice('data:image/png;base64,'.length), 'base64');
  t.equal(png.subarray(0, 8).toString('hex'), '89504e470d0a1a0a', 'the PNG bytes the agent sent');
  t.ok(await sp.locator('#shot-img').evaluate((img) => { const i = img as unknown as { complete: boolean; naturalWidth: number }; return i.complete && i.naturalWidth > 0; }), 'Chromium decoded it');
  if (await docScreenshot(sp, path.join(IMG, 'noc-screen.png'))) t.pass('docs/img/noc-screen.png written');

  t.equal(await a.stop(), 0, 'noc-a stops cleanly');
  await waitFor('noc-a offline in the archive, nothing waiting', async () => fleet.batcher.waiting === 0 && (await q((d) => count(d, "SELECT status_online AS n FROM devices WHERE device_id = 'noc-a'"))) === 0);
  const day = (await q((d) => d.get<{ day: string }>("SELECT MAX(day) AS day FROM plays WHERE device_id = 'noc-a'")))!.day;
  const archived = async (): Promise<string[][]> => (await q((d) => d.all<{ device_id: string; campaign_id: string; played: number; target: number }>(
    `SELECT c.device_id, c.campaign_id, c.target,
            (SELECT COUNT(*) FROM plays p WHERE p.device_id = c.device_id AND p.day = c.day AND p.campaign_id = c.campaign_id AND p.outcome = 'completed' AND p.in_window = 1) AS played
       FROM compliance c WHERE c.day = ? ORDER BY c.device_id, c.campaign_id`, [day]))).map((r) => [r.device_id, r.campaign_id, String(r.played), String(r.target)]);
  const want = await archived();
  t.equal(want.length, 2, 'both screens planned that day');
  const rp = await page();
  await rp.goto(`${fleet.http!.url}/report?from=${day}&to=${day}`);
  await rp.locator('#rows tbody tr').nth(1).waitFor();
  const got = await rp.locator('#rows tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
  t.same(got.map((r) => [r[1], r[2], r[3], r[4]]), want, 'per screen: played and target as the archive has them');
  t.ok(want.every((r) => Number(r[2]) >= 2), 'and they are real counts');
  t.same(await archived(), want, 'the archive did not move meanwhile');
  const share = await rp.locator('#groups tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
  t.same(share.map((r) => r[1]), ['all', 'lobby', 'site-1'], 'per group rows');
  t.equal(await rp.locator('#csv').getAttribute('href'), `/api/report.csv?from=${day}&to=${day}`, 'the CSV link');
  t.same(errors, [], 'no page or console error');
});
