// The batcher's group commit around a batch with nothing to write: a batch of only refused QoS 1
// messages (junk, a probe) is acked and must not stop later batches (it once left a settled
// `writing` promise behind and the ingest stalled for good; fleet-pg.test.ts caught it).
import t from 'tap';
import type { BatchStats } from '../fleet/archive/writes.js';
import { emptyStats } from '../fleet/archive/writes.js';
import { Batcher } from '../fleet/ingest/batcher.js';
import type { Item } from '../fleet/ingest/decode.js';
import { silentLogger } from '../fleet/log.js';
import { waitFor } from './helpers/wait.js';

t.test('a batch of only refused messages is acked, and the next batch is written', async (t) => {
  const written: Item[][] = [];
  const b = new Batcher(async (items): Promise<BatchStats> => { written.push(items); return emptyStats(); }, { maxRows: 10, maxDelayMs: 0 }, silentLogger());
  const acked: string[] = [];
  b.add({ ack: () => acked.push('junk') });
  await waitFor('junk acked', () => acked.length === 1);
  const item = { kind: 'event', deviceId: 'd-1', event: { ts: '2026-12-05T00:00:00.000Z', type: 'applied' }, raw: '{}' } as unknown as Item;
  b.add({ item, ack: () => acked.push('event') });
  await waitFor('the next batch written and acked', () => acked.length === 2, 5000);
  t.same(acked, ['junk', 'event']);
  t.same(written, [[item]], 'the write saw only the real item');
  await b.drain();
});
