import t from 'tap';
import type { SqliteStore } from '../agent/store/sqlite-store.js';
import { startBroker } from './helpers/mosquitto.js';
import { assignment, makeConfig, makeLink, Observer, openStore, PREFIX, SHA, tempDir } from './helpers/link-rig.js';
import { waitFor } from './helpers/wait.js';

// PROTOCOL v1.1 §8: plays and events are two independent queues. A NOC that subscribes to
// `{p}/device/+/play` alone (no `event` subscriber, so the broker answers every event publish
// with PUBACK 0x10) must still receive every play.

async function recordPlay(store: SqliteStore, deviceId: string, at: number): Promise<void> {
  const id = await store.recordPlayStart({ campaignId: 'c1', mediaSha256: SHA, day: '2024-08-15', scheduledAt: at, startedAt: at, inWindow: true, display: 'connected', clockSynced: true });
  await store.recordPlayEnd(id, { endedAt: at + 30_000, durationMs: 30_000, outcome: 'completed', target: 10 }, deviceId);
}

const event = (i: number): { ts: string; type: string; detail: unknown } => ({ ts: new Date().toISOString(), type: 'test-note', detail: { i } });

t.test('two agents of one group, a NOC subscribed to play only: every play arrives once, in order per device', async (t) => {
  const broker = await startBroker(t);
  const noc = await Observer.connect(t, broker.url, [`${PREFIX}/device/+/play`]);
  const devices = ['wall-a', 'wall-b'];
  const agents = await Promise.all(
    devices.map(async (deviceId) => {
      const dir = tempDir(t);
      const store = await openStore(t, dir);
      const link = makeLink(t, makeConfig(dir, broker.url, { deviceId, groups: ['all', 'site-1'] }), store, undefined, { noSubscriberRetryMs: 200 });
      await link.start();
      return { deviceId, store, link };
    }),
  );
  await waitFor('both connected', () => agents.every((a) => a.link.connected()));
  // A group assignment: each agent records an `applied` event, the first row of its outbox.
  await noc.publish(`${PREFIX}/group/site-1/assignment`, JSON.stringify(assignment(1)), { retain: true });
  for (const a of agents) await waitFor(`${a.deviceId} applied`, async () => (await a.store.appliedVersion('assignment', 'group/site-1')) === 1);

  let at = Date.parse('2024-08-15T01:00:00Z');
  for (let i = 0; i < 10; i++) {
    for (const a of agents) {
      await recordPlay(a.store, a.deviceId, (at += 60_000));
      await a.store.recordEvent(event(i));
      a.link.notifyOutbox();
    }
  }
  const playsOf = (deviceId: string): any[] => noc.got.filter((m) => m.topic === `${PREFIX}/device/${deviceId}/play`).map((m) => m.json());
  await waitFor('20 plays at the NOC', () => noc.got.length >= 20, 30_000);
  for (const a of agents) {
    await waitFor(`${a.deviceId}: no play row left`, async () => (await a.store.outboxPeek(100, 0, 'play')).length === 0);
    const seqs = playsOf(a.deviceId).map((p) => p.seq);
    t.same(seqs, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], `${a.deviceId}: each play once, in seq order`);
    t.equal(new Set(playsOf(a.deviceId).map((p) => p.eventId)).size, 10, `${a.deviceId}: 10 distinct eventIds`);
    t.ok(a.link.outbox.lanes.event.stats.noSubscribers >= 1, `${a.deviceId}: the event lane was answered 0x10`);
    t.equal((await a.store.outboxPeek(100, 0, 'event')).length, 11, `${a.deviceId}: the 11 event rows wait for a subscriber`);
  }
  t.equal(noc.got.length, 20, 'nothing else reached the play-only NOC');
});

t.test('0x10 on the event lane does not delay play rows, and the paused lane sends no more than its window', async (t) => {
  const broker = await startBroker(t);
  const noc = await Observer.connect(t, broker.url, [`${PREFIX}/device/+/play`]);
  const dir = tempDir(t);
  const store = await openStore(t, dir);
  // The event lane, once answered 0x10, stays paused for ten minutes: far beyond this test.
  const link = makeLink(t, makeConfig(dir, broker.url, { outbox: { inFlight: 5, maxEvents: 10_000 } }), store, undefined, { noSubscriberRetryMs: 600_000 });
  await link.start();
  await waitFor('connected', () => link.connected());
  await store.outboxInsertMany('event', Array.from({ length: 50 }, (_, i) => JSON.stringify(event(i))), Date.now());
  link.notifyOutbox();
  await waitFor('event rows answered 0x10', () => link.outbox.stats.noSubscribers >= 1);

  let at = Date.parse('2024-08-15T01:00:00Z');
  for (let i = 0; i < 5; i++) {
    await recordPlay(store, 'dev-1', (at += 60_000));
    await store.recordEvent(event(100 + i));
    link.notifyOutbox();
  }
  await waitFor('5 plays delivered while the event lane is paused', () => noc.got.length === 5);
  await waitFor('play rows deleted', async () => (await store.outboxPeek(100, 0, 'play')).length === 0);
  t.same(noc.got.map((m) => m.json().seq), [1, 2, 3, 4, 5], 'in order');
  const ev = link.outbox.lanes.event.stats;
  t.equal(ev.noSubscribers, ev.sent, 'every event publish was answered 0x10');
  t.ok(ev.sent <= 5, `the paused event lane sent ${ev.sent} row(s): at most its in-flight window (5)`);
  t.equal((await store.outboxPeek(1000, 0, 'event')).length, 55, 'every event row kept');
  t.equal(link.outbox.lanes.play.stats.noSubscribers, 0, 'the play lane never saw 0x10');
});

t.test('0x10 on the play lane does not hold back events either', async (t) => {
  const broker = await startBroker(t);
  const noc = await Observer.connect(t, broker.url, [`${PREFIX}/device/+/event`]);
  const dir = tempDir(t);
  const store = await openStore(t, dir);
  const link = makeLink(t, makeConfig(dir, broker.url), store, undefined, { noSubscriberRetryMs: 600_000 });
  await link.start();
  await waitFor('connected', () => link.connected());
  let at = Date.parse('2024-08-15T01:00:00Z');
  for (let i = 0; i < 3; i++) await recordPlay(store, 'dev-1', (at += 60_000));
  for (let i = 0; i < 3; i++) await store.recordEvent(event(i));
  link.notifyOutbox();
  await waitFor('3 events delivered', () => noc.got.length === 3);
  t.same(noc.got.map((m) => m.json().detail.i), [0, 1, 2]);
  t.ok(link.outbox.lanes.play.stats.noSubscribers >= 1, 'the play lane was answered 0x10');
  t.equal((await store.outboxPeek(100, 0, 'play')).length, 3, 'play rows kept');
});

t.test('store: lanes peek their own rows; the cap drops event rows before play rows', async (t) => {
  const dir = tempDir(t);
  const store = await openStore(t, dir);
  await store.outboxInsertMany('event', ['{"e":1}', '{"e":2}'], 1);
  await store.outboxInsertMany('play', ['{"p":1}', '{"p":2}', '{"p":3}'], 2);
  await store.outboxInsertMany('event', ['{"e":3}'], 3);
  const plays = await store.outboxPeek(10, 0, 'play');
  t.same(plays.map((r) => r.payload), ['{"p":1}', '{"p":2}', '{"p":3}']);
  t.same((await store.outboxPeek(10, plays[0]!.id, 'event')).map((r) => r.payload), ['{"e":3}'], 'cursor per lane');
  t.equal(await store.outboxTrim(4), 2, 'two rows over the cap');
  t.same((await store.outboxPeek(10)).map((r) => r.payload), ['{"p":1}', '{"p":2}', '{"p":3}', '{"e":3}'], 'the two oldest events went, no play');
  t.equal(await store.outboxTrim(2), 2);
  t.same((await store.outboxPeek(10)).map((r) => r.payload), ['{"p":2}', '{"p":3}'], 'plays go only when no event is left, oldest first');
});
