// The ingest's PUBACKs (fleet/ingest/acks.ts): a commit's acks leave as one buffer of 4-byte
// PUBACKs written on the client's stream, not through mqtt.js's encoder. Real mosquitto must take
// every one: a malformed PUBACK makes it drop the connection, and one it never gets makes it
// send the message again to the next session.
import type { MqttClient } from 'mqtt';
import t from 'tap';
import type { PlayEvent } from '../agent/protocol/index.js';
import { PubackWriter } from '../fleet/ingest/acks.js';
import type { FleetService } from '../fleet/service.js';
import { fleetStage, plays, publishPlays, startFleet } from './helpers/fleet-rig.js';
import type { Teardown } from './helpers/tmp.js';
import { waitFor } from './helpers/wait.js';

/** A client whose connection is `stream`: PubackWriter reads nothing else of it. */
function fakeClient(): { client: MqttClient; writes: Buffer[]; stream: { destroyed: boolean; writable: boolean; write(b: Buffer): boolean } } {
  const writes: Buffer[] = [];
  const stream = { destroyed: false, writable: true, write: (b: Buffer) => writes.push(Buffer.from(b)) > 0 };
  return { client: { stream } as unknown as MqttClient, writes, stream };
}

const tick = (): Promise<void> => new Promise((r) => process.nextTick(r));

t.test('acks given in one tick leave in one write, in order, on the connection they were given for', async (t) => {
  const w = new PubackWriter();
  const a = fakeClient();
  for (const id of [1, 2, 258, 65535]) w.add(a.client, id);
  t.same(a.writes, [], 'nothing written before the end of the tick');
  await tick();
  t.same(a.writes, [Buffer.from([0x40, 2, 0, 1, 0x40, 2, 0, 2, 0x40, 2, 1, 2, 0x40, 2, 0xff, 0xff])], 'one write: PUBACK (0x40), length 2, packet id, for each');

  // A reconnect inside a tick: what was given for the old connection goes there, the rest to the new.
  const b = fakeClient();
  w.add(a.client, 7);
  w.add(b.client, 8);
  await tick();
  t.same(a.writes.slice(1), [Buffer.from([0x40, 2, 0, 7])]);
  t.same(b.writes, [Buffer.from([0x40, 2, 0, 8])]);

  // A connection closed before the write: nothing is written to it (the broker sends those again).
  a.stream.destroyed = true;
  w.add(a.client, 9);
  await tick();
  t.equal(a.writes.length, 2, 'nothing written to a destroyed stream');
});

/**
 * The first session's ingest stopped, the same persistent session started again and `play` (a new
 * one) published: anything the broker still counted as unacknowledged comes again beside it.
 */
async function nextSession(t: Teardown, first: FleetService, screen: MqttClient, play: PlayEvent): Promise<FleetService> {
  const second = await startFleet(t, first.config);
  await waitFor('the session resumed', () => second.ingest.connected);
  await publishPlays(screen, [play]);
  await waitFor('the new play archived', () => second.batcher.totals.plays >= 1 && second.batcher.waiting === 0, 30_000);
  return second;
}

t.test('real mosquitto takes every PUBACK: no dropped connection, nothing sent again to the next session', async (t) => {
  const { fleet: first, screen } = await fleetStage(t, 'ingest-acks');
  // More than one Receive Maximum (2,000): the broker sends the rest only as PUBACKs come back.
  const N = 2500;
  const evs = plays('hn-ack', 'acac000000000001', Array.from({ length: N + 1 }, (_, i) => i + 1));
  await publishPlays(screen, evs.slice(0, N));
  await waitFor('every play archived', () => first.batcher.totals.plays >= N && first.batcher.waiting === 0, 60_000);
  t.ok(first.batcher.totals.batches >= 3, `acked over several commits (${first.batcher.totals.batches} batches)`);
  t.equal(first.ingest.counters.connects, 1, 'the broker never dropped the connection (a malformed PUBACK would)');
  await first.stop();

  const second = await nextSession(t, first, screen, evs[N]!);
  t.equal(second.ingest.counters.received, 1, 'only the new play arrived: the broker had every PUBACK of the first session');
  t.equal(second.batcher.totals.duplicates, 0);
});

t.test('a stop right after the last message arrived commits it and acks it before disconnecting', async (t) => {
  // The last, partial batch waits out a long delay: it is still waiting when the stop comes.
  const { fleet: first, screen } = await fleetStage(t, 'ingest-acks-stop', { batch: { maxRows: 1000, maxDelayMs: 5000 } });
  const N = 1500;
  const evs = plays('hn-stop', 'acac000000000002', Array.from({ length: N + 1 }, (_, i) => i + 1));
  await publishPlays(screen, evs.slice(0, N));
  await waitFor('every play received', () => first.ingest.counters.received >= N + 1, 30_000);
  t.ok(first.batcher.waiting > 0, `some still wait at the stop (${first.batcher.waiting})`);
  await first.stop();
  t.equal(first.batcher.totals.plays, N, 'the stop committed every play it had');

  const second = await nextSession(t, first, screen, evs[N]!);
  t.equal(second.ingest.counters.received, 1, 'nothing sent again: the commit at the stop was acked before the disconnect');
});
