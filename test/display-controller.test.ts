import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { VirtualClock } from '../agent/core/clock.js';
import { silentLogger } from '../agent/core/log.js';
import { commandBrightness, mpvFilterBrightness, PictureState } from '../agent/display/brightness.js';
import { CecControl, parseCecOutput } from '../agent/display/cec.js';
import { DisplayController } from '../agent/display/controller.js';
import type { EventDetails, EventType } from '../agent/events/types.js';
import { execCommand } from '../agent/health/command.js';
import type { DisplaySchedule } from '../agent/protocol/display-schema.js';
import { SimulatedPlayer } from '../agent/player/simulated.js';
import { Zone } from '../agent/schedule/zoned.js';
import { tempDir } from './helpers/tmp.js';

// The controller on a virtual clock with the simulated player (its picture is what mpv would be
// given; the real mpv is display-agent.test.ts). CEC goes through a real child process: a fake
// `cec-ctl` that records its argv and prints what cec-ctl prints. This container has no
// /dev/cec* node and cannot load `vivid` (no kernel modules), so no real CEC adapter or sink was
// exercised here.

const zone = new Zone('Asia/Ho_Chi_Minh');
const at = (s: string): number => Date.parse(`${s}+07:00`);

/** A fake cec-ctl: appends its argv to `log`; `mode` file: `ack` (the sink answers) or `nack`. */
function fakeCecCtl(dir: string): { bin: string; log: string; mode: string } {
  const bin = path.join(dir, 'cec-ctl');
  const log = path.join(dir, 'argv.log');
  const mode = path.join(dir, 'mode');
  writeFileSync(mode, 'ack');
  writeFileSync(bin, `#!/bin/sh
echo "$*" >> '${log}'
case "$*" in *--playback*) echo "Driver Info:"; echo "	Driver Name                : vc4_hdmi"; exit 0;; esac
if [ "$(cat '${mode}')" = nack ]; then
  echo "Transmit from Playback Device 1 to TV (4 to 0):"
  echo "	Tx, Not Acknowledged (2), Max Retries"
  exit 0
fi
echo "Transmit from Playback Device 1 to TV (4 to 0):"
case "$*" in
  *--give-device-power-status*) echo "CEC_MSG_GIVE_DEVICE_POWER_STATUS (0x8f)"; echo "    Received from TV (0 to 4):"; echo "	CEC_MSG_REPORT_POWER_STATUS (0x90):"; echo "		pwr-state: standby (0x01)";;
  *) echo "	Sequence: 3 Tx Timestamp: 1.5s";;
esac
`);
  chmodSync(bin, 0o755);
  return { bin, log, mode };
}

function rig(t: { teardown(fn: () => unknown): void }, schedule: DisplaySchedule | undefined, start: number, o: { cec?: CecControl; busy?: () => boolean } = {}) {
  const clock = new VirtualClock(start);
  const player = new SimulatedPlayer({ clock });
  const picture = new PictureState(player);
  const events: Array<EventDetails['display']> = [];
  const state = { schedule };
  const c = new DisplayController({
    clock,
    log: silentLogger(),
    zone,
    schedule: () => state.schedule,
    picture,
    brightness: mpvFilterBrightness(picture),
    ...(o.cec ? { cec: o.cec } : {}),
    busy: o.busy ?? (() => false),
    events: { record: async <T extends EventType>(type: T, d: EventDetails[T]) => void (type === 'display' && events.push(d as EventDetails['display'])) },
  });
  t.teardown(() => c.stop());
  return { clock, player, c, events, state };
}

t.test('power windows and levels at their boundaries, each change one display event', async (t) => {
  const s: DisplaySchedule = { power: [{ on: '06:00', off: '23:30' }], brightness: [{ from: '18:30', pct: 60 }, { from: '22:00', pct: 35 }] };
  const r = rig(t, s, at('2024-08-15T05:00:00'));
  await r.c.start();
  t.same(r.c.state(), { power: 'standby', brightnessPct: 100 }, 'before the window: standby');
  t.same(r.player.picture, { blank: true, filterPct: 100, gpuPct: 100 }, 'mpv black and paused');
  t.same(r.events, [{ power: 'standby', brightnessPct: 100, reason: 'schedule', via: 'black' }]);
  await r.clock.advanceTo(at('2024-08-15T06:00:00'));
  t.same(r.c.state(), { power: 'on', brightnessPct: 100 }, 'on at 06:00 exactly');
  t.equal(r.player.picture?.blank, false);
  await r.clock.advanceTo(at('2024-08-15T18:30:00'));
  t.same(r.player.picture, { blank: false, filterPct: 60, gpuPct: 100 }, '60 % from 18:30');
  await r.clock.advanceTo(at('2024-08-15T23:30:00'));
  t.same(r.c.state(), { power: 'standby', brightnessPct: 35 });
  t.same(r.events.map((e) => `${e.power} ${e.brightnessPct} ${e.reason}`), ['standby 100 schedule', 'on 100 schedule', 'on 60 schedule', 'on 35 schedule', 'standby 35 schedule']);
  t.same(r.c.offPeriods(at('2024-08-15T12:00:00')).map((p) => [zone.formatTime(p.start), zone.formatTime(p.end)]), [['00:00:00', '06:00:00'], ['23:30:00', '00:00:00']]);
  await r.clock.advanceTo(at('2024-08-16T00:00:00'));
  t.same(r.c.state(), { power: 'standby', brightnessPct: 100 }, 'a new day starts at 100 % (levels before the first are full)');
});

t.test('standby waits for the spot on screen to end; no schedule means no event at start', async (t) => {
  let busy = true;
  const r = rig(t, { power: [{ on: '06:00', off: '23:30' }] }, at('2024-08-15T23:29:00'), { busy: () => busy });
  await r.c.start();
  t.equal(r.c.state().power, 'on');
  await r.clock.advanceTo(at('2024-08-15T23:30:05'));
  t.equal(r.c.state().power, 'on', 'a spot still plays: not cut');
  busy = false;
  await r.clock.advanceBy(1000);
  t.equal(r.c.state().power, 'standby', 'standby right after it');

  const q = rig(t, undefined, at('2024-08-15T12:00:00'));
  await q.c.start();
  t.same(q.c.state(), { power: 'on', brightnessPct: 100 });
  t.same(q.events, [], 'nothing to say');
  q.state.schedule = { power: [{ on: '13:00', off: '14:00' }] };
  await q.c.refresh('schedule');
  t.same(q.events, [{ power: 'standby', brightnessPct: 100, reason: 'schedule', via: 'black' }], 'a new schedule applies at once');
});

t.test('wake(reason) holds the screen on for an alert; release hands it back to the schedule', async (t) => {
  const r = rig(t, { power: [{ on: '06:00', off: '23:30' }] }, at('2024-08-15T02:00:00'));
  await r.c.start();
  await r.c.wake('alert:flood-1');
  t.same(r.c.state().power, 'on');
  t.equal(r.player.picture?.blank, false);
  t.same(r.events.at(-1), { power: 'on', brightnessPct: 100, reason: 'alert' });
  t.equal(r.c.standby(), false, 'the engine sees no standby while woken');
  await r.c.release('alert:flood-1');
  t.same(r.events.at(-1), { power: 'standby', brightnessPct: 100, reason: 'schedule', via: 'black' });
  t.equal(r.player.picture?.blank, true);
});

t.test('HDMI-CEC through cec-ctl: standby and image-view-on, woken a minute ahead; a sink that does not answer falls back to black', async (t) => {
  const dir = tempDir(t);
  const fake = fakeCecCtl(dir);
  const cec = new CecControl({ run: execCommand(5000), devices: () => ['/dev/cec0'], cecCtl: fake.bin });
  const r = rig(t, { power: [{ on: '06:00', off: '23:30' }] }, at('2024-08-15T05:00:00'), { cec });
  await r.c.start();
  t.same(r.events, [{ power: 'standby', brightnessPct: 100, reason: 'schedule', via: 'cec', cec: 'acknowledged' }]);
  t.equal(r.player.picture?.blank, true, 'mpv is black under a CEC standby too');
  // Each step waits for the evaluation (a real cec-ctl process) before the virtual clock moves on.
  const step = async (to: string): Promise<void> => {
    await r.clock.advanceTo(at(to));
    await r.c.settled();
  };
  await step('2024-08-15T05:59:00');
  const argv = (): string[] => readFileSync(fake.log, 'utf8').trim().split('\n');
  t.same(argv(), ['-d /dev/cec0 --playback', '-d /dev/cec0 --to 0 --standby', '-d /dev/cec0 --to 0 --image-view-on'], 'the sink is woken 60 s before the window');
  t.equal(r.c.state().power, 'standby', 'the picture still waits for the window');
  await step('2024-08-15T06:00:00');
  t.equal(r.c.state().power, 'on');
  t.equal(argv().length, 3, 'not woken twice');
  writeFileSync(fake.mode, 'nack');
  await step('2024-08-15T23:30:00');
  t.same(r.events.at(-1), { power: 'standby', brightnessPct: 100, reason: 'cec-failed', via: 'black', cec: 'Tx, Not Acknowledged (2), Max Retries' });
  t.equal(r.player.picture?.blank, true);
  t.same(await cec.powerStatus(), { device: '/dev/cec0', ok: false, said: 'Tx, Not Acknowledged (2), Max Retries' });
  writeFileSync(fake.mode, 'ack');
  t.same(await cec.powerStatus(), { device: '/dev/cec0', ok: true, power: 'standby', said: 'pwr-state: standby' }, "the sink's own answer");
  const missing = new CecControl({ run: execCommand(5000), devices: () => ['/dev/cec0'], cecCtl: path.join(dir, 'no-such-cec-ctl') });
  t.match(await missing.standby(), { ok: false, said: /not installed/ });
  t.same(parseCecOutput('/dev/cec1', '\t\tpwr-state: on (0x00)\n'), { device: '/dev/cec1', ok: true, power: 'on', said: 'pwr-state: on' });
});

t.test("command brightness driver: the LED sender's tool gets the level", async (t) => {
  const dir = tempDir(t);
  const bin = path.join(dir, 'sender-bright');
  const log = path.join(dir, 'levels');
  writeFileSync(bin, `#!/bin/sh\necho "$*" >> '${log}'\n`);
  chmodSync(bin, 0o755);
  const d = commandBrightness(execCommand(5000), [bin, '--level', '{pct}']);
  t.equal(d.name, `command ${bin}`);
  await d.set(35);
  await d.set(60.4);
  t.same(readFileSync(log, 'utf8').trim().split('\n'), ['--level 35', '--level 60']);
  const failing = commandBrightness(execCommand(5000), ['/bin/false', '{pct}']);
  await t.rejects(failing.set(10), 'a tool that fails is an error the controller logs and retries');
});
