import path from 'node:path';
import t from 'tap';
import { VirtualClock, flushJobs } from '../agent/core/clock.js';
import type { ApplyResult, DesiredChange, DesiredMessage, DesiredState } from '../agent/core/desired.js';
import { silentLogger } from '../agent/core/log.js';
import type { Assignment, EpochMs, Override } from '../agent/core/types.js';
import { DesiredApplier, RETRY_MAX_MS, type DesiredApplierContext } from '../agent/desired/applier.js';
import { EventRecorder } from '../agent/events/recorder.js';
import { SqliteStore } from '../agent/store/sqlite-store.js';
import { tempDir, type Teardown } from './helpers/tmp.js';

// desired/ against a real SQLite store: the version rules, clears, the quiet re-delivery, stale
// rejections, and documents the store could not take kept in memory and retried.

const TOPIC = 'signage/device/d1/assignment';
const OTOPIC = 'signage/device/d1/override';
const asg = (version: number, id = 'c1'): Assignment => ({ version, campaigns: [{ id, media: { url: `file:///${id}.mp4`, sha256: 'a'.repeat(64) }, timesPerDay: 3 }] });
const ovr = (version: number, timesPerDay = 5): Override => ({ version, campaigns: { c1: { timesPerDay } } });

/** A real store whose next `failures` desired-state writes fail as a full disk would. */
class FullDiskStore extends SqliteStore {
  failures = 0;
  attempts: EpochMs[] = [];
  override async applyIfNewer(source: string, change: DesiredChange, at: EpochMs): Promise<ApplyResult> {
    this.attempts.push(at);
    if (this.failures > 0) {
      this.failures--;
      throw Object.assign(new Error('SQLITE_FULL: database or disk is full'), { code: 'SQLITE_FULL' });
    }
    return await super.applyIfNewer(source, change, at);
  }
}

interface Rig {
  store: FullDiskStore;
  clock: VirtualClock;
  applier: DesiredApplier;
  changes: DesiredState[];
  rejected: Array<[string, string]>;
  msg(topic: string, change: DesiredChange, source?: string): DesiredMessage;
  events(): Promise<Array<{ ts: string; type: string; detail: any }>>;
  eventRows(): Promise<string[]>;
  advance(ms: number): Promise<void>;
}

async function rig(t: Teardown, file = path.join(tempDir(t, 'desired-'), 'agent.db'), over: Partial<DesiredApplierContext> = {}): Promise<Rig> {
  const clock = new VirtualClock(Date.parse('2024-08-15T01:00:00Z'));
  const store = new FullDiskStore({ file, log: silentLogger(), clock });
  await store.start();
  const changes: DesiredState[] = [];
  const rejected: Array<[string, string]> = [];
  const applier = new DesiredApplier({
    store, clock, log: silentLogger(), groups: ['all'],
    events: new EventRecorder({ store, clock, log: silentLogger() }),
    onChange: (s) => void changes.push(s),
    ...over,
  });
  await applier.start();
  t.teardown(async () => {
    await applier.stop();
    await store.stop().catch(() => undefined);
  });
  const eventRows = async (): Promise<string[]> => (await store.outboxPeek(1000, 0, 'event')).map((r) => r.payload);
  return {
    store, clock, applier, changes, rejected,
    msg: (topic, change, source = 'device') => ({ topic, source, change, reject: (reason) => void rejected.push([topic, reason]) }),
    eventRows,
    events: async () => (await eventRows()).map((p) => JSON.parse(p)),
    advance: (ms) => clock.advanceTo(clock.now() + ms, async () => {
      await flushJobs();
      await applier.idle();
    }),
  };
}

t.test('versions: higher applied, same doc ignored quietly, lower or reused version rejected', async (t) => {
  const r = await rig(t);
  t.equal(await r.applier.offer(r.msg(TOPIC, { kind: 'assignment', doc: asg(7) })), 'applied');
  t.same(await r.eventRows(), [`{"ts":"2024-08-15T01:00:00.000Z","type":"applied","detail":{"topic":"${TOPIC}","kind":"assignment","source":"device","version":7}}`], 'the applied event, byte for byte');
  t.equal(r.changes.length, 1, 'the host heard once');
  t.same(r.changes[0]!.assignments.map((a) => [a.source, a.version, a.doc?.campaigns[0]?.id]), [['device', 7, 'c1']], 'with the state as stored');
  t.same(r.applier.applied(), { device: 7, groups: {}, overrides: { groups: {} } });

  t.equal(await r.applier.offer(r.msg(TOPIC, { kind: 'assignment', doc: asg(7) })), 'ignored', 'the retained copy again');
  t.equal(await r.applier.offer(r.msg(TOPIC, { kind: 'assignment', doc: asg(7, 'other') })), 'rejected');
  t.equal(await r.applier.offer(r.msg(TOPIC, { kind: 'assignment', doc: asg(5, 'old') })), 'rejected');
  t.same(r.rejected, [[TOPIC, 'stale version 7 <= 7'], [TOPIC, 'stale version 5 <= 7']]);
  t.equal((await r.events()).length, 1, 'no event for what was ignored or rejected (rejections go through the link)');
  t.equal(r.changes.length, 1, 'and no re-plan');
  t.equal((await r.store.loadDesired()).assignments[0]!.doc!.campaigns[0]!.id, 'c1', 'the plan in force untouched');

  t.equal(await r.applier.offer(r.msg(TOPIC, { kind: 'assignment', doc: asg(8, 'new') })), 'applied');
  t.equal(r.changes.length, 2);
  t.equal(r.applier.current().assignments[0]!.version, 8);
  t.equal(await r.applier.offer(r.msg('signage/group/all/assignment', { kind: 'assignment', doc: asg(1, 'g') }, 'group/all')), 'applied', 'versions are per topic');
  t.same(r.applier.applied(), { device: 8, groups: { all: 1 }, overrides: { groups: {} } });
});

t.test('override clear: ignored with nothing in force, keeps the version, and a reused version is stale', async (t) => {
  const r = await rig(t);
  t.equal(await r.applier.offer(r.msg(OTOPIC, { kind: 'override', clear: true })), 'ignored', 'nothing to clear');
  t.equal(await r.applier.offer(r.msg(OTOPIC, { kind: 'override', doc: ovr(3) })), 'applied');
  t.same(r.applier.applied().overrides, { device: 3, groups: {} });
  t.equal(await r.applier.offer(r.msg(OTOPIC, { kind: 'override', clear: true })), 'cleared');
  const ev = await r.eventRows();
  t.equal(ev.at(-1), `{"ts":"2024-08-15T01:00:00.000Z","type":"applied","detail":{"topic":"${OTOPIC}","kind":"override","source":"device","version":3,"cleared":true}}`);
  t.equal(r.changes.length, 2, 're-planned on the override and on its clear');
  t.same(r.changes[1]!.overrides, [{ source: 'device', version: 3, doc: null, appliedAt: r.clock.now() }], 'the clear as stored');
  t.same(r.applier.applied().overrides, { groups: {} }, 'a cleared override is not listed');
  t.equal(await r.applier.offer(r.msg(OTOPIC, { kind: 'override', clear: true })), 'ignored', 'clearing twice');
  t.equal(await r.applier.offer(r.msg(OTOPIC, { kind: 'override', doc: ovr(3) })), 'rejected', 'the cleared version cannot come back');
  t.same(r.rejected, [[OTOPIC, 'stale version 3 <= 3']]);
  t.equal(await r.applier.offer(r.msg(OTOPIC, { kind: 'override', doc: ovr(4, 9) })), 'applied', 'a higher version sets a new one');
  t.equal(r.changes.length, 3);
});

t.test('start reads what a previous run stored', async (t) => {
  const file = path.join(tempDir(t, 'desired-'), 'agent.db');
  const a = await rig(t, file);
  await a.applier.offer(a.msg(TOPIC, { kind: 'assignment', doc: asg(7) }));
  await a.applier.offer(a.msg(OTOPIC, { kind: 'override', doc: ovr(2) }));
  await a.applier.stop();
  await a.store.stop();
  const b = await rig(t, file);
  t.same(b.applier.applied(), { device: 7, overrides: { device: 2, groups: {} }, groups: {} });
  t.equal(await b.applier.offer(b.msg(TOPIC, { kind: 'assignment', doc: asg(7) })), 'ignored', 'the retained copy after a restart');
  t.equal(b.changes.length, 0);
});

t.test('a document the store cannot take is kept and retried, 5 s doubling up to 15 s; no event until stored', async (t) => {
  const r = await rig(t);
  r.store.failures = 4;
  const t0 = r.clock.now();
  t.equal(await r.applier.offer(r.msg(TOPIC, { kind: 'assignment', doc: asg(7) })), 'kept');
  t.same(r.applier.failedTopics, [TOPIC]);
  t.equal(r.applier.stats.storeFailures, 1);
  t.same(await r.events(), [], 'neither applied nor rejected');
  t.same(r.rejected, []);
  await r.advance(60_000);
  t.same(r.store.attempts.map((at) => at - t0), [0, 5000, 15_000, 30_000, 45_000], 'retried after 5, 10, 15 and 15 s');
  t.equal(RETRY_MAX_MS, 15_000);
  t.equal(r.applier.stats.storeFailures, 4);
  t.same(r.applier.failedTopics, [], 'nothing left waiting');
  t.equal(await r.store.appliedVersion('assignment', 'device'), 7);
  t.same((await r.events()).map((e) => [e.type, e.detail.version]), [['applied', 7]], 'one applied event, when it was stored');
  t.equal(r.changes.length, 1);

  // A success resets the delay: the next failure is retried after 5 s again.
  r.store.failures = 1;
  const t1 = r.clock.now();
  t.equal(await r.applier.offer(r.msg(TOPIC, { kind: 'assignment', doc: asg(8) })), 'kept');
  await r.advance(5000);
  t.same(r.store.attempts.slice(-2).map((at) => at - t1), [0, 5000]);
  t.equal(await r.store.appliedVersion('assignment', 'device'), 8);
});

t.test('a newer message supersedes a kept one: the old one is never retried over it', async (t) => {
  const r = await rig(t);
  r.store.failures = 1;
  t.equal(await r.applier.offer(r.msg(TOPIC, { kind: 'assignment', doc: asg(7) })), 'kept');
  t.equal(await r.applier.offer(r.msg(TOPIC, { kind: 'assignment', doc: asg(8) })), 'applied');
  t.same(r.applier.failedTopics, []);
  await r.advance(60_000);
  t.equal(r.store.attempts.length, 2, 'v7 not tried again');
  t.same(r.rejected, [], 'so no stale rejection either');
  t.same((await r.events()).map((e) => e.detail.version), [8]);
});

t.test('a kept stale document, once the store answers, is rejected through its message', async (t) => {
  const r = await rig(t);
  await r.applier.offer(r.msg(TOPIC, { kind: 'assignment', doc: asg(7) }));
  r.store.failures = 1;
  t.equal(await r.applier.offer(r.msg(TOPIC, { kind: 'assignment', doc: asg(5) })), 'kept');
  await r.advance(5000);
  t.same(r.rejected, [[TOPIC, 'stale version 5 <= 7']]);
});

t.test('the host failing to act on a stored document neither retries it nor loses its event', async (t) => {
  const r = await rig(t, undefined, { onChange: () => { throw new Error('re-plan failed'); } });
  t.equal(await r.applier.offer(r.msg(TOPIC, { kind: 'assignment', doc: asg(7) })), 'applied');
  await r.advance(60_000);
  t.equal(r.store.attempts.length, 1);
  t.equal((await r.events()).length, 1);
});

t.test('stop: nothing more is taken, kept documents are dropped with their retry', async (t) => {
  const r = await rig(t);
  r.store.failures = 1;
  await r.applier.offer(r.msg(TOPIC, { kind: 'assignment', doc: asg(7) }));
  await r.applier.stop();
  t.equal(r.clock.pendingTimers(), 0, 'no retry timer left');
  t.same(r.applier.failedTopics, []);
  t.equal(await r.applier.offer(r.msg(TOPIC, { kind: 'assignment', doc: asg(8) })), 'stopped');
  t.equal(r.store.attempts.length, 1);
});
