import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { listHdmiConnectors, readDisplayState } from '../agent/player/display.js';
import { AGENT_MPV_ARGS, buildMpvArgs, outputArgs } from '../agent/player/mpv-args.js';
import { tempDir } from './helpers/clips.js';

function sysfs(t: Parameters<typeof tempDir>[0], cons: Record<string, string>): string {
  const root = tempDir(t, 'signage-sysfs-');
  const drm = path.join(root, 'class', 'drm');
  mkdirSync(path.join(drm, 'card0'), { recursive: true });
  mkdirSync(path.join(drm, 'card0-DSI-1'), { recursive: true });
  writeFileSync(path.join(drm, 'card0-DSI-1', 'status'), 'connected\n');
  for (const [dir, status] of Object.entries(cons)) {
    mkdirSync(path.join(drm, dir), { recursive: true });
    writeFileSync(path.join(drm, dir, 'status'), `${status}\n`);
  }
  return root;
}

t.test('HDMI status from sysfs', async (t) => {
  t.equal(readDisplayState(sysfs(t, { 'card1-HDMI-A-1': 'disconnected', 'card1-HDMI-A-2': 'connected' })), 'connected');
  t.equal(readDisplayState(sysfs(t, { 'card1-HDMI-A-1': 'disconnected', 'card1-HDMI-A-2': 'disconnected' })), 'disconnected');
  t.equal(readDisplayState(sysfs(t, {})), 'unknown', 'no HDMI connector (a DSI panel does not count)');
  t.equal(readDisplayState(path.join(tempDir(t), 'nothing')), 'unknown', 'no /sys/class/drm at all');
  t.same(
    listHdmiConnectors(sysfs(t, { 'card2-HDMI-A-1': 'connected' })).map((c) => c.name),
    ['HDMI-A-1'],
  );
});

t.test('mpv arguments: agent defaults, output by host, config last', async (t) => {
  const root = sysfs(t, { 'card1-HDMI-A-1': 'disconnected', 'card1-HDMI-A-2': 'connected' });
  t.same(outputArgs({ desktop: false, sysfsRoot: root }), [
    '--vo=gpu', '--gpu-context=drm', '--drm-connector=HDMI-A-2', '--drm-mode=1920x1080@60',
  ]);
  t.same(outputArgs({ desktop: true }), ['--vo=gpu']);
  const headless = buildMpvArgs(['--vo=null', '--ao=null'], { desktop: false, sysfsRoot: root });
  t.same(headless, [...AGENT_MPV_ARGS, '--vo=null', '--ao=null'], 'a --vo in config replaces the output defaults');
  const pi = buildMpvArgs(['--drm-mode=1280x720@60'], { desktop: false, sysfsRoot: root });
  t.equal(pi.at(-1), '--drm-mode=1280x720@60', 'config comes last, so it wins');
  t.ok(AGENT_MPV_ARGS.includes('--osc=no') && AGENT_MPV_ARGS.includes('--idle=yes'));
});
