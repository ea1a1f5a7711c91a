import t from 'tap';
import { pino } from 'pino';
import { startBroker } from './helpers/mosquitto.js';
import { makeLink, Observer, PREFIX, DEVICE, makeConfig, openStore, tempDir } from './helpers/link-rig.js';
import { waitFor } from './helpers/wait.js';

// Issue 8 (SD budget): a lane nobody listens to is retried every 30 s. Logging every retry at
// info wrote two journal lines a minute per unheard lane on an idle screen; the first pause of a
// series is said at info, its repeats at debug, and an ack starts a new series.

const MSG = 'outbox: no subscribers on this lane; keeping its rows, retrying later';

t.test('repeated no-subscriber pauses of a lane are logged at info once per series', async (t) => {
  const broker = await startBroker(t);
  const dir = tempDir(t);
  const config = makeConfig(dir, broker.url);
  const store = await openStore(t, dir);
  const lines: Array<{ level: number; msg: string; lane?: string }> = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  const obs = await Observer.connect(t, broker.url, [`${PREFIX}/device/+/status`]);
  const link = makeLink(t, config, store, undefined, { noSubscriberRetryMs: 100 }, log);
  await link.start();
  await waitFor('birth', () => obs.on('status').some((m) => m.json().online === true));

  const pauses = (level: number): number => lines.filter((l) => l.msg === MSG && l.lane === 'event' && l.level === level).length;
  await store.recordEvent({ ts: new Date().toISOString(), type: 'test', detail: { n: 1 } });
  link.notifyOutbox();
  await waitFor('five pauses of the event lane', () => link.outbox.lanes.event.stats.noSubscribers >= 5);
  t.equal(pauses(30), 1, 'the first pause at info');
  t.ok(pauses(20) >= 4, `its repeats at debug (${pauses(20)})`);

  // Someone listens: the row is acked, and the next unheard row starts a new series.
  await obs.client.subscribeAsync(`${PREFIX}/device/${DEVICE}/event`, { qos: 1 });
  await waitFor('the event delivered', () => obs.events('test').length === 1);
  await obs.client.unsubscribeAsync(`${PREFIX}/device/${DEVICE}/event`);
  const before = link.outbox.lanes.event.stats.noSubscribers;
  await store.recordEvent({ ts: new Date().toISOString(), type: 'test', detail: { n: 2 } });
  link.notifyOutbox();
  await waitFor('a new pause', () => link.outbox.lanes.event.stats.noSubscribers > before);
  t.equal(pauses(30), 2, 'a new series is said at info again');
});
