import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from './helpers/link-rig.js';
import { freePort } from './helpers/ports.js';
import { tempDir } from './helpers/tmp.js';

// `npm start` as a developer runs it: its own broker, clips, config and default campaign.
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

t.test('npm start: a broker, a clip, the default campaign, and a spot plays within a minute', async (t) => {
  const dir = tempDir(t, 'devstart-');
  const port = await freePort();
  let out = '';
  const child = spawn('bash', [path.join(root, 'scripts/dev-start.sh')], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SIGNAGE_DEV_DIR: dir, MQTT_PORT: String(port), DISPLAY: '', WAYLAND_DISPLAY: '' },
  });
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  t.teardown(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      /* already gone */
    }
  });
  await waitFor('the agent starts', () => /agent started/.test(out), 60_000);
  t.match(out, new RegExp(`started mosquitto on 127\\.0\\.0\\.1:${port}`), 'started its own broker');
  t.match(out, /signagectl --url mqtt:\/\/127\.0\.0\.1:\d+ watch/, 'prints what to try next');
  t.ok(existsSync(path.join(dir, 'media/spot.mp4')), 'made a clip with ffmpeg');
  const config = JSON.parse(readFileSync(path.join(dir, 'signage-agent.json'), 'utf8')) as { player: { args: string[] } };
  t.same(config.player.args, ['--vo=null', '--ao=null'], 'headless without a display');
  const startedAt = Date.now();
  await waitFor('a completed spot', () => /spot ended/.test(out) && /completed/.test(out), 90_000);
  // A spot a minute (at :30) and 10 s long: completed within 75 s of the start, whatever the second.
  t.ok(Date.now() - startedAt < 75_000, `first spot completed ${Math.round((Date.now() - startedAt) / 1000)} s after the agent started`);
  process.kill(-child.pid!, 'SIGINT');
  t.equal(await exited, 0, 'Ctrl-C stops it cleanly');
});
