import path from 'node:path';
import t from 'tap';
import { silentLogger } from '../agent/core/log.js';
import type { EpochMs } from '../agent/core/types.js';
import type { ApplyResult, DesiredChange } from '../agent/core/desired.js';
import { SqliteStore } from '../agent/store/sqlite-store.js';
import { startBroker } from './helpers/mosquitto.js';
import { assignment, FakeHost, makeConfig, makeLink, Observer, tempDir, topic } from './helpers/link-rig.js';
import { waitFor } from './helpers/wait.js';

// Issue 14 item 2: desired state the store could not take (SQLITE_FULL) is not lost. desired/
// keeps it in memory and tries again; it records no fake `applied` or `rejected` event.

/** A real store whose next `failures` desired-state writes fail as a full disk would. */
class FullDiskStore extends SqliteStore {
  failures = 0;
  failed = 0;
  override async applyIfNewer(source: string, change: DesiredChange, at: EpochMs): Promise<ApplyResult> {
    if (this.failures > 0) {
      this.failures--;
      this.failed++;
      throw Object.assign(new Error('SQLITE_FULL: database or disk is full'), { code: 'SQLITE_FULL' });
    }
    return await super.applyIfNewer(source, change, at);
  }
}

async function setUp(t: Tap, failures: number, desiredRetryMs: number) {
  const broker = await startBroker(t);
  const dir = tempDir(t);
  const store = new FullDiskStore({ file: path.join(dir, 'agent.db'), log: silentLogger() });
  await store.start();
  t.teardown(() => store.stop().catch(() => undefined));
  store.failures = failures;
  const obs = await Observer.connect(t, broker.url, ['signage/device/+/event']);
  const host = new FakeHost({ desiredRetryMs });
  const link = makeLink(t, makeConfig(dir, broker.url), store, host, { rejectedWindowMs: 0 });
  await link.start();
  await waitFor('connected', () => link.connected());
  return { store, obs, host, link, desired: host.desired! };
}

type Tap = { teardown(fn: () => unknown): void };

t.test('an assignment the store cannot write is retried until it is stored; no fake events', async (t) => {
  const { store, obs, host, desired } = await setUp(t, 3, 100);
  await obs.publish(topic.device('assignment'), JSON.stringify(assignment(7)), { retain: true });
  await waitFor('stored after the disk has room again', async () => (await store.appliedVersion('assignment', 'device')) === 7);
  t.equal(store.failed, 3, 'three writes failed first');
  t.equal(desired.stats.storeFailures, 3);
  t.same(desired.failedTopics, [], 'nothing left waiting');
  // The host hears of it after the commit and the applied event's write: wait for that, then
  // check it heard once.
  await waitFor('re-planned', () => host.desiredChanged >= 1);
  t.equal(host.desiredChanged, 1, 're-planned once, when it was stored');
  await waitFor('applied event', () => obs.events('applied').length === 1);
  t.equal(obs.events('applied')[0].detail.version, 7);
  t.equal(obs.events('rejected').length, 0, 'no rejected event for a document that was fine');
});

t.test('a newer document supersedes one the store refused: it is never retried after it', async (t) => {
  const { store, obs, desired } = await setUp(t, 1, 60_000);
  await obs.publish(topic.device('assignment'), JSON.stringify(assignment(7)), { retain: true });
  await waitFor('v7 refused by the store', () => store.failed === 1);
  t.same(desired.failedTopics, [topic.device('assignment')], 'v7 kept in memory');
  await obs.publish(topic.device('assignment'), JSON.stringify(assignment(8)), { retain: true });
  await waitFor('v8 stored', async () => (await store.appliedVersion('assignment', 'device')) === 8);
  t.same(desired.failedTopics, [], 'v7 dropped: v8 replaced it');
  // A later document on another topic passes through the same serial queue, after any retry.
  await obs.publish(topic.device('override'), JSON.stringify({ version: 1, campaigns: { c1: { timesPerDay: 2 } } }), { retain: true });
  await waitFor('override applied', () => obs.events('applied').length === 2);
  t.same(obs.events('applied').map((e) => e.detail.version), [8, 1]);
  t.equal(obs.events('rejected').length, 0, 'v7 was not retried into a stale rejection');
});
