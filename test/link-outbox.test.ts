import t from 'tap';
import type { SqliteStore } from '../agent/store/sqlite-store.js';
import { startBroker } from './helpers/mosquitto.js';
import { DEVICE, makeConfig, makeLink, Observer, openStore, rig, SHA, tcpProxy, tempDir, topic } from './helpers/link-rig.js';
import { waitFor } from './helpers/wait.js';

async function recordPlay(store: SqliteStore, at: number): Promise<void> {
  const id = await store.recordPlayStart({ campaignId: 'c1', mediaSha256: SHA, day: '2024-08-15', scheduledAt: at, startedAt: at, inWindow: true, display: 'connected', clockSynced: true });
  await store.recordPlayEnd(id, { endedAt: at + 30_000, durationMs: 30_000, outcome: 'completed', target: 10 }, DEVICE);
}

/** First arrival of each eventId, in arrival order, and how many duplicates a deduping consumer dropped. */
function dedupe(plays: any[]): { seqs: number[]; dups: number } {
  const seen = new Set<string>();
  const seqs: number[] = [];
  for (const p of plays) {
    if (seen.has(p.eventId)) continue;
    seen.add(p.eventId);
    seqs.push(p.seq);
  }
  return { seqs, dups: plays.length - seqs.length };
}

t.test('broker killed while plays are recorded: after restart every play arrives, in order, seq gapless', async (t) => {
  const r = await rig(t, {}, { noSubscriberRetryMs: 200 });
  const plays = (): any[] => r.obs.on('play').map((m) => m.json());
  let at = Date.parse('2024-08-15T01:00:00Z');
  for (let i = 0; i < 20; i++) await recordPlay(r.store, (at += 60_000));
  r.link.notifyOutbox();
  await waitFor('20 plays online', () => plays().length === 20);

  // Keep recording through the outage, as the engine would.
  let recording = true;
  const recorder = (async () => {
    while (recording) {
      await recordPlay(r.store, (at += 60_000));
      r.link.notifyOutbox();
      await new Promise((res) => setTimeout(res, 15));
    }
  })();
  const recordedBefore = (await r.store.playsForDay('2024-08-15')).length;
  await waitFor('the recorder running', async () => (await r.store.playsForDay('2024-08-15')).length > recordedBefore);
  await r.broker.kill();
  await waitFor('offline', () => !r.link.connected());
  const recordedOffline = (await r.store.playsForDay('2024-08-15')).length;
  await waitFor('a play recorded while offline', async () => (await r.store.playsForDay('2024-08-15')).length > recordedOffline);
  t.ok((await r.store.outboxCount()) > 0, 'plays recorded offline wait in the outbox');
  await r.broker.restart();
  await waitFor('reconnected', () => r.link.connected() && r.link.currentSession() >= 2, 20_000);
  const recordedOnline = (await r.store.playsForDay('2024-08-15')).length;
  await waitFor('a play recorded after the reconnect', async () => (await r.store.playsForDay('2024-08-15')).length > recordedOnline);
  recording = false;
  await recorder;
  const total = (await r.store.playsForDay('2024-08-15')).length;
  await waitFor('every play delivered', () => new Set(plays().map((p) => p.eventId)).size === total, 20_000);
  await waitFor('outbox empty', async () => (await r.store.outboxCount()) === 0);

  const { seqs, dups } = dedupe(plays());
  t.same(seqs, Array.from({ length: total }, (_, i) => i + 1), `all ${total} plays, first arrivals in seq order, gapless`);
  t.ok(plays().every((p) => p.eventId === `${DEVICE}:${r.store.storeId()}:${p.seq}` && p.storeId === r.store.storeId()), 'eventId is deviceId:storeId:seq');
  t.comment(`duplicates a deduping consumer dropped: ${dups}`);
  t.ok(r.link.currentSession() >= 2, 'reconnected');
});

t.test('PUBACK 0x10 (no matching subscribers): rows stay and are sent once someone listens', async (t) => {
  // mosquitto 2.0.11 does answer 0x10 when nobody subscribes (checked: PUBACK reasonCode 16).
  const r = await rig(t, {}, { noSubscriberRetryMs: 200 });
  const noc = await Observer.connect(t, r.broker.url, []);
  let at = Date.parse('2024-08-15T01:00:00Z');
  // The rig's observer listens to everything: make the play topic subscriber-less.
  await r.obs.client.unsubscribeAsync('signage/#');
  for (let i = 0; i < 5; i++) await recordPlay(r.store, (at += 60_000));
  r.link.notifyOutbox();
  await waitFor('0x10 seen', () => r.link.outbox.stats.noSubscribers >= 1);
  t.equal(await r.store.outboxCount(), 5, 'nothing deleted on 0x10');
  await noc.client.subscribeAsync(topic.device('play'), { qos: 1 });
  await waitFor('delivered after the retry', () => noc.on('play').length >= 5);
  await waitFor('outbox empty', async () => (await r.store.outboxCount()) === 0);
  t.same(dedupe(noc.on('play').map((m) => m.json())).seqs, [1, 2, 3, 4, 5], 'in order');
});

t.test('outbox cap: oldest rows dropped, an outbox-dropped event says how many', async (t) => {
  const r = await rig(t, { outbox: { maxEvents: 100, inFlight: 10 } }, { noSubscriberRetryMs: 100_000, trimEveryMs: 100 });
  await r.obs.client.unsubscribeAsync('signage/#');
  await r.store.outboxInsertMany('event', Array.from({ length: 150 }, (_, i) => JSON.stringify({ ts: new Date().toISOString(), type: 'test', detail: { i } })), Date.now());
  // Each trim round (every 100 ms) counts the outbox once, a heartbeat (every 5 s) once too: four
  // more counts after the cut are at least three trim rounds that saw the drop event's row.
  let counts = 0;
  const count = r.store.outboxCount.bind(r.store);
  r.store.outboxCount = () => (counts++, count());
  await waitFor('trimmed', async () => (await count()) === 100);
  const seen = counts;
  await waitFor('three more trim rounds', () => counts >= seen + 4);
  t.equal(await count(), 100, 'stable at the cap (the drop event does not cause another drop)');
  t.equal(r.link.outbox.stats.dropped, 51, '51 dropped: 150 rows cut to 99, plus the outbox-dropped event');
  const rows = await r.store.outboxPeek(200);
  const last = JSON.parse(rows.at(-1)!.payload);
  t.equal(last.type, 'outbox-dropped');
  t.same(last.detail, { count: 51, max: 100 });
  t.equal(JSON.parse(rows[0]!.payload).detail.i, 51, 'the oldest went first');
});

t.test('connection cut repeatedly in the middle of a 20,000-row drain: all delivered, first arrivals in order', async (t) => {
  const broker = await startBroker(t);
  const proxy = await tcpProxy(t, broker.port);
  const dir = tempDir(t);
  const store = await openStore(t, dir);
  const noc = await Observer.connect(t, broker.url, [topic.device('play')]);
  const N = 20_000;
  const payloads = Array.from({ length: N }, (_, i) => JSON.stringify({ eventId: `${DEVICE}:${i + 1}`, seq: i + 1 }));
  for (let i = 0; i < N; i += 5000) await store.outboxInsertMany('play', payloads.slice(i, i + 5000), Date.now());
  const link = makeLink(t, makeConfig(dir, proxy.url), store, undefined, { noSubscriberRetryMs: 200 });
  await link.start();
  let cuts = 0;
  for (const at of [3000, 9000, 15000]) {
    await waitFor(`${at} delivered`, () => noc.on('play').length >= at, 30_000);
    proxy.cut();
    cuts++;
  }
  await waitFor('all delivered', () => new Set(noc.on('play').map((m) => m.json().eventId)).size === N, 60_000);
  await waitFor('outbox empty', async () => (await store.outboxCount()) === 0);
  const { seqs, dups } = dedupe(noc.on('play').map((m) => m.json()));
  t.equal(seqs.length, N);
  t.ok(seqs.every((s, i) => s === i + 1), 'first arrivals are 1..N in order');
  t.ok(link.currentSession() >= 1 + cuts, `reconnected after each of ${cuts} cuts`);
  t.comment(`${dups} duplicates after ${cuts} cuts (at-least-once: in flight when cut)`);
});
