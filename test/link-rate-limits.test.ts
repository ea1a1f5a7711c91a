import mqtt from 'mqtt';
import t, { type Test } from 'tap';
import { VirtualClock } from '../agent/core/clock.js';
import { COMMAND_NAMES } from '../agent/link/commands.js';
import { COMMAND_LIMITS, CommandLimiter } from '../agent/link/rate-limits.js';
import { startBroker } from './helpers/mosquitto.js';
import { FakeHost, makeConfig, makeLink, Observer, openStore, tempDir, topic } from './helpers/link-rig.js';
import { sleep, waitFor } from './helpers/wait.js';

// Issue 10 item 6: commands cannot be flooded. Token buckets per command name (rate-limits.ts),
// restart-player one at a time; a refused command is answered ok:false at arrival and never
// queued, so a flood of one name cannot keep another waiting.

const cmd = (o: Record<string, unknown>): string => JSON.stringify(o);
const SCREENSHOT = COMMAND_LIMITS.screenshot!;

t.test('limits: every command has one; buckets refill on the monotonic clock; restart-player one at a time', async (t) => {
  for (const name of COMMAND_NAMES) t.ok(Object.hasOwn(COMMAND_LIMITS, name), `${name} has a limit`);
  const clock = new VirtualClock(Date.parse('2024-08-15T01:00:00Z'));
  const l = new CommandLimiter(clock);
  const takes = (name: string, n: number): boolean[] => Array.from({ length: n }, () => l.admit(name).ok);
  t.same(takes('screenshot', 4), [true, true, true, false], 'burst 3');
  t.match(l.admit('screenshot'), { ok: false, error: 'rate limited: retry after 10 s' });
  await clock.advanceBy(4_000);
  t.match(l.admit('screenshot'), { ok: false, error: 'rate limited: retry after 6 s' }, 'the wait counts down');
  await clock.advanceBy(6_000);
  t.same(takes('screenshot', 2), [true, false], 'one token per 10 s');
  clock.jump(clock.now() + 3_600_000);
  t.equal(l.admit('screenshot').ok, false, 'a wall-clock step does not refill');
  await clock.advanceBy(10 * SCREENSHOT.refillMs);
  t.same(takes('screenshot', 4), [true, true, true, false], 'a full bucket holds no more than its burst');

  t.same(takes('ping', 21), [...Array(20).fill(true), false], 'ping: burst 20');
  await clock.advanceBy(200);
  t.same(takes('ping', 2), [true, false], 'then 5 a second');
  t.equal(l.admit('status').ok, true, 'each name has its own bucket');

  const first = l.admit('restart-player');
  if (!first.ok) throw new Error('first restart-player refused');
  t.match(l.admit('restart-player'), { ok: false, error: /^rate limited: restart-player is already under way; retry after 30 s$/ }, 'while one runs');
  await clock.advanceBy(31_000);
  t.equal(l.admit('restart-player').ok, false, 'still running after its window: refused, not queued');
  first.done();
  t.equal(l.admit('restart-player').ok, true, 'after it ended and the window passed');
  t.match(l.admit('restart-player'), { ok: false, error: /rate limited/ });
});

/** A host whose screenshot and restart take a while, as mpv's do, and that counts them. */
class SlowHost extends FakeHost {
  shots = 0;
  override async screenshot(): Promise<Buffer> {
    this.shots++;
    await sleep(300);
    return super.screenshot();
  }
  override async restartPlayer(): Promise<void> {
    await sleep(500);
    await super.restartPlayer();
  }
}

async function slowRig(t: Test): Promise<{ host: SlowHost; obs: Observer; link: ReturnType<typeof makeLink>; url: string }> {
  const broker = await startBroker(t);
  const dir = tempDir(t);
  const store = await openStore(t, dir);
  const obs = await Observer.connect(t, broker.url);
  const host = new SlowHost();
  const link = makeLink(t, makeConfig(dir, broker.url), store, host);
  await link.start();
  await waitFor('link connected with birth', () => obs.on('status').some((m) => m.json().online === true));
  return { host, obs, link, url: broker.url };
}

t.test('a burst of 50 screenshots: at most the bucket\'s worth taken, the rest refused at once; ping answers during the flood', async (t) => {
  const r = await slowRig(t);
  const flooder = await mqtt.connectAsync(r.url, { protocolVersion: 5 });
  t.teardown(() => flooder.end(true));
  const began = Date.now();
  const sends: Promise<unknown>[] = [];
  for (let i = 0; i < 50; i++) {
    sends.push(flooder.publishAsync(topic.device('cmd'), cmd({ id: `s-${i}`, name: 'screenshot' }), { qos: 1 }));
    if (i === 24) sends.push(flooder.publishAsync(topic.device('cmd'), cmd({ id: 'p-1', name: 'ping' }), { qos: 1 }));
  }
  await Promise.all(sends);
  const results = (): any[] => r.obs.on('cmd/result').map((m) => m.json());
  await waitFor('ping answered', () => results().some((x) => x.id === 'p-1'), 30_000);
  t.match(results().find((x) => x.id === 'p-1'), { ok: true, result: { pong: true } }, 'ping ran in the middle of the flood');
  await waitFor('the screenshots that were let through are answered', () => results().filter((x) => x.ok && x.id.startsWith('s-')).length >= SCREENSHOT.burst, 30_000);
  // Every command that was let through has run once the runner is idle (the rest were refused on arrival).
  await r.link.commands.idle();
  // The refusals in flight reach us: each is either answered or counted as a reply not sent.
  await waitFor('every refusal answered or counted as not sent', () => results().filter((x) => x.id.startsWith('s-') && !x.ok).length + r.link.commands.stats.repliesDropped === r.link.commands.stats.limited, 30_000);
  const elapsed = Date.now() - began;
  const allowance = SCREENSHOT.burst + Math.floor(elapsed / SCREENSHOT.refillMs);
  const shots = results().filter((x) => x.id.startsWith('s-'));
  t.ok(r.host.shots <= allowance, `${r.host.shots} screenshots taken (allowance ${allowance} in ${elapsed} ms)`);
  t.equal(shots.filter((x) => x.ok).length, r.host.shots, 'each screenshot taken is answered');
  const refused = shots.filter((x) => !x.ok);
  const { limited, repliesDropped } = r.link.commands.stats;
  t.ok(refused.length >= 1, `${refused.length} refusals answered`);
  t.equal(refused.length + repliesDropped, limited, `the other ${repliesDropped} refusals were not sent: at most 16 replies in flight, so a flood of refused commands is not a flood of replies`);
  t.ok(refused.every((x) => /^rate limited: retry after \d+ s$/.test(x.error)), 'each says when to retry');
  t.equal(limited, 50 - r.host.shots, 'every other one was refused by its bucket');
  t.ok(r.link.commands.queueHighWater <= SCREENSHOT.burst + 1, `the command queue peaked at ${r.link.commands.queueHighWater}: refused ones never queue`);
  await r.link.rejected.idle();
  const rows = r.obs.events('rejected').filter((e) => e.detail.topic === topic.device('cmd'));
  t.ok(rows.length <= 1, `${rows.length} rejected event(s) published at once for the flood (the rest fold into the minute's row)`);
});

t.test('two restart-player back to back: run once, the second answered rate limited', async (t) => {
  const r = await slowRig(t);
  await Promise.all([
    r.obs.publish(topic.device('cmd'), cmd({ id: 'r-1', name: 'restart-player' })),
    r.obs.publish(topic.device('cmd'), cmd({ id: 'r-2', name: 'restart-player' })),
  ]);
  const results = (): any[] => r.obs.on('cmd/result').map((m) => m.json());
  await waitFor('both answered', () => results().length === 2, 30_000);
  t.same(results().find((x) => x.id === 'r-1'), { id: 'r-1', ok: true, result: {} });
  t.match(results().find((x) => x.id === 'r-2'), { ok: false, error: /^rate limited: / });
  // The second was refused on arrival and never queued: once the runner is idle, no restart is still coming.
  await r.link.commands.idle();
  t.equal(r.host.restarts, 1, 'the player was restarted once');
});
