import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Observer } from './helpers/link-rig.js';
import { freePort } from './helpers/ports.js';
import { tempDir } from './helpers/tmp.js';
import { waitFor } from './helpers/wait.js';

// `npm start` as a developer runs it: its own broker, clips, config and default campaign.
// Ctrl-C is sent the way a terminal does: SIGINT to the whole process group.
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// Two full runs of the dev agent (one waits for a spot) do not fit the default 120 s per file.
t.setTimeout(300_000);

interface DevStart {
  child: ChildProcess;
  out(): string;
  exited: Promise<number | null>;
  dir: string;
  port: number;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function devStart(t: Test, argv: string[]): Promise<DevStart> {
  const dir = tempDir(t, 'devstart-');
  const port = await freePort();
  let out = '';
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: root,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SIGNAGE_DEV_DIR: dir, MQTT_PORT: String(port), DISPLAY: '', WAYLAND_DISPLAY: '' },
  });
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  t.teardown(() => {
    // The agent and the broker run in process groups of their own: end those too if a test failed.
    const pids = [child.pid!, ...[...out.matchAll(/agent: pid (\d+)|started mosquitto on \S+ \(pid (\d+)\)/g)].map((m) => Number(m[1] ?? m[2]))];
    for (const pid of pids) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });
  return { child, out: () => out, exited, dir, port };
}

/** A terminal's Ctrl-C: SIGINT to every process of the foreground group. Asserts one clean stop. */
async function ctrlC(t: Test, d: DevStart): Promise<void> {
  const brokerPid = Number(/started mosquitto on \S+ \(pid (\d+)\)/.exec(d.out())?.[1]);
  const agentPid = Number(/agent: pid (\d+)/.exec(d.out())?.[1]);
  t.ok(alive(brokerPid) && alive(agentPid), `broker (${brokerPid}) and agent (${agentPid}) running`);
  process.kill(-d.child.pid!, 'SIGINT');
  t.equal(await d.exited, 0, 'Ctrl-C stops it with exit 0');
  const out = d.out();
  t.notMatch(out, /second signal/, 'the agent got one signal');
  t.equal(out.match(/INFO.*stopping/g)?.length, 1, 'one stop');
  t.match(out, /agent stopped/, 'the agent stopped cleanly');
  t.notMatch(out, /mpv exited \(code null, signal SIGINT\)/, 'mpv was stopped by the agent, not killed by the Ctrl-C');
  t.match(out, new RegExp(`broker: stopped mosquitto \\(pid ${brokerPid}\\)`), 'the broker it started is stopped');
  t.notOk(alive(brokerPid) || alive(agentPid), 'neither is left running');
}

t.test('npm start: a broker, a clip, the default campaign, and a spot plays within a minute', async (t) => {
  const d = await devStart(t, ['bash', path.join(root, 'scripts/dev-start.sh')]);
  await waitFor('the agent starts', () => /agent started/.test(d.out()), 60_000);
  t.match(d.out(), new RegExp(`started mosquitto on 127\\.0\\.0\\.1:${d.port}`), 'started its own broker');
  t.match(d.out(), /npx signagectl watch --url mqtt:\/\/127\.0\.0\.1:\d+/, 'prints what to try next');
  t.ok(existsSync(path.join(d.dir, 'media/spot.mp4')), 'made a clip with ffmpeg');
  const config = JSON.parse(readFileSync(path.join(d.dir, 'signage-agent.json'), 'utf8')) as { player: { args: string[] } };
  t.same(config.player.args, ['--vo=null', '--ao=null'], 'headless without a display');
  const startedAt = Date.now();
  // A spot a minute (at :30) and 10 s long: one completes within 75 s of the start, whatever the
  // second; the 90 s bound only stops a stuck run, the time is a comment.
  await waitFor('a completed spot', () => /spot ended/.test(d.out()) && /completed/.test(d.out()), 90_000);
  t.comment(`first spot completed ${Math.round((Date.now() - startedAt) / 1000)} s after the agent started`);
  await ctrlC(t, d);
});

function run(line: string, until?: (out: string) => boolean): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    let out = '';
    const c = spawn('bash', ['-c', line], { cwd: root, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const stop = (): void => {
      try {
        process.kill(-c.pid!, 'SIGINT');
      } catch {
        /* gone */
      }
    };
    const timer = setTimeout(stop, 60_000);
    const onData = (b: Buffer): void => {
      out += b.toString();
      if (until?.(out)) stop();
    };
    c.stdout.on('data', onData);
    c.stderr.on('data', onData);
    c.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

t.test('through npm: every printed hint works against the running agent; one Ctrl-C, one clean stop, offline status published before the broker stops', async (t) => {
  const d = await devStart(t, ['npm', 'start']);
  await waitFor('the agent starts', () => /agent started/.test(d.out()), 90_000);
  const device = /signage-agent: device (\S+),/.exec(d.out())?.[1] ?? '';
  const noc = await Observer.connect(t, `mqtt://127.0.0.1:${d.port}`, ['signage/device/+/status']);
  const statuses = (): Array<{ online: boolean; session: number }> => noc.got.map((m) => m.json() as { online: boolean; session: number });
  await waitFor('the retained birth', () => statuses().some((s) => s.online));

  const hints = d.out().split('\n').filter((l) => /^ {2}npx /.test(l)).map((l) => l.trim());
  t.equal(hints.length, 7, `seven hints printed:\n${hints.join('\n')}`);
  for (const hint of hints) {
    const isWatch = / watch( |$)/.test(hint);
    const r = await run(hint, isWatch ? (o) => o.includes(device) : undefined);
    t.notMatch(r.out, /unknown command|Unknown option|bad arguments/i, `${hint}: accepted`);
    if (isWatch) {
      t.match(r.out, device, `${hint}: shows the screen`);
    } else if (/doctor/.test(hint)) {
      t.not(r.code, 2, `${hint}: no usage error (a check may fail on this box)`);
      t.match(r.out, /mpv/, `${hint}: lists its checks`);
    } else {
      t.equal(r.code, 0, `${hint}: exit 0\n${r.out.slice(0, 400)}`);
    }
    const frame = path.join(d.dir, 'frame.png');
    if (/screenshot/.test(hint)) t.ok(existsSync(frame) && readFileSync(frame).subarray(1, 4).toString() === 'PNG', 'the frame was written');
    if (/ cmd .*play-now/.test(hint)) t.match(r.out, /"ok": true/, 'play-now answered ok');
  }

  const session = statuses().find((s) => s.online)!.session;
  await ctrlC(t, d);
  t.ok(statuses().some((s) => !s.online && s.session === session), 'the NOC saw the clean stop\'s offline status (the broker outlived the agent)');
});
