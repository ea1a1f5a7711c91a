// The NOC page in a real headless Chromium, fed over MQTT: device ids and heartbeat fields are
// the screen's words, and a hostile one renders as text (no element, no script), on the grid and
// on the screen's page; the group filter and the counts at the top follow the tiles.
import t from 'tap';
import { deviceTopic, encode, heartbeat, statusOnline } from '../agent/protocol/index.js';
import { startBrowser } from './helpers/browser.js';
import { fleetStage } from './helpers/fleet-rig.js';
import { waitFor } from './helpers/wait.js';

const HOSTILE_ID = '<img src=x onerror=window.__xss=1>';
const HOSTILE_TEXT = '<script>window.__xss=2</script><b id=injected>bold</b>';

t.test('hostile device ids and heartbeat fields are inert; group filter and counts', async (t) => {
  const { fleet, screen } = await fleetStage(t, 'ingest-xss', { http: { port: 0 }, groups: { 'district-1': ['ok-1', 'ok-2'] } });
  const now = Date.now();
  const say = async (id: string, extra: Record<string, unknown> = {}): Promise<void> => {
    await screen.publishAsync(deviceTopic('signage', id, 'status'), encode('status', statusOnline({ session: 1, storeId: 's1', agentVersion: '0.1.0', bootedAt: now, applied: { groups: {}, overrides: { groups: {} } } })), { qos: 1, retain: true });
    const hb = heartbeat({ now, deviceId: id, bootedAt: now - 1000, backlog: 0, fields: { storeId: 's1', cpuTempC: 48, player: { state: 'playing', campaignId: HOSTILE_TEXT, url: HOSTILE_TEXT }, compliance: [{ campaignId: HOSTILE_TEXT, day: '2026-12-05', played: 2, target: 4, onTrack: true }], ...extra } });
    await screen.publishAsync(deviceTopic('signage', id, 'heartbeat'), encode('heartbeat', hb), { qos: 0 });
  };
  await say(HOSTILE_ID);
  await say('ok-1');
  await say('ok-2');
  await waitFor('three screens with heartbeats archived', async () => (await fleet.archive.read((q) => q.all('SELECT 1 FROM devices WHERE heartbeat_at IS NOT NULL'))).length === 3);

  const { page, errors } = await startBrowser(t);
  const p = await page();
  await p.goto(`${fleet.http!.url}/`);
  await p.locator('.tile').nth(2).waitFor();
  t.equal(await p.locator('.tile').count(), 3, 'three tiles');
  t.equal(await p.locator('.tile .id').first().textContent(), HOSTILE_ID, 'the hostile id is shown as text');
  t.equal(await p.locator('.tile img, #injected, script:not([src])').count(), 0, 'no element made from it');
  t.equal(await p.evaluate(() => (globalThis as unknown as { __xss?: number }).__xss), undefined, 'no script ran');
  t.equal(await p.locator('[data-count="total"]').textContent(), '3');
  t.equal(await p.locator('[data-count="online"]').textContent(), '3');

  await p.selectOption('#group', 'district-1');
  await waitFor('the filter applied', async () => (await p.locator('.tile').count()) === 2);
  t.same(await p.locator('.tile .id').allTextContents(), ['ok-1', 'ok-2'], 'district-1 only');
  t.equal(await p.locator('[data-count="total"]').textContent(), '2', 'the counts follow the filter');
  t.match(p.url(), /\?group=district-1$/, 'the filter is in the address');

  await p.goto(`${fleet.http!.url}/screen?id=${encodeURIComponent(HOSTILE_ID)}`);
  await p.locator('#heartbeat tbody tr').nth(3).waitFor();
  const cells = await p.locator('#heartbeat td').allTextContents();
  t.ok(cells.includes(HOSTILE_TEXT), 'the hostile heartbeat field shown as text');
  t.equal(await p.locator('#title').textContent(), `${HOSTILE_ID} online`);
  t.equal(await p.locator('main img:not(#shot-img), #injected, main script').count(), 0, 'no element made from the payload');
  t.equal(await p.evaluate(() => (globalThis as unknown as { __xss?: number }).__xss), undefined, 'no script ran');
  t.same(errors, [], 'no page error, no console error (a CSP violation would be one)');
});
