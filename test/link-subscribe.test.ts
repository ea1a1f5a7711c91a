import t from 'tap';
import { denySubscriptionsConfig, liftSubscribeDenial, startBroker } from './helpers/mosquitto.js';
import { assignment, makeConfig, makeLink, Observer, openStore, tempDir, topic } from './helpers/link-rig.js';
import { waitFor } from './helpers/wait.js';

// PROTOCOL v1.1 §8: a refused subscription (a broker ACL denies one topic: SUBACK 0x87) never prevents the
// birth message; the agent names the refused topics in an event and retries them later.

const DENIED = topic.group('hoan-kiem', 'override');

t.test('an ACL denies one subscription: birth published anyway, subscribe-refused event, retried until granted', async (t) => {
  const dir = tempDir(t);
  const broker = await startBroker(t, denySubscriptionsConfig(dir, [DENIED]));
  const obs = await Observer.connect(t, broker.url, ['signage/device/+/status', 'signage/device/+/event']);
  const store = await openStore(t, dir);
  const link = makeLink(t, makeConfig(dir, broker.url), store, undefined, { subscribeRetryMs: 300 });
  await link.start();

  await waitFor('birth', () => obs.on('status').some((m) => m.json().online === true));
  await waitFor('subscribe-refused event', () => obs.events('subscribe-refused').length >= 1);
  const refused = obs.events('subscribe-refused')[0].detail.topics;
  t.same(refused, [{ topic: DENIED, code: 0x87 }], 'names the topic and the SUBACK reason code (0x87 not authorized)');
  const late = await Observer.connect(t, broker.url, [topic.device('status')]);
  await waitFor('retained status', () => late.got.length > 0);
  t.equal(late.got[0]!.json().online, true, 'the retained status says online');

  // The granted subscriptions work.
  await obs.publish(topic.device('assignment'), JSON.stringify(assignment(2)), { retain: true });
  await waitFor('device assignment applied', async () => (await store.appliedVersion('assignment', 'device')) === 2);

  // The operator fixes the ACL; the retry subscribes and gets the retained override.
  await obs.publish(DENIED, JSON.stringify({ version: 4, campaigns: { c1: { timesPerDay: 3 } } }), { retain: true });
  await obs.publish('$CONTROL/dynamic-security/v1', liftSubscribeDenial(DENIED));
  await waitFor('override applied after the retry', async () => (await store.appliedVersion('override', 'group/hoan-kiem')) === 4, 30_000);
  t.equal(obs.events('subscribe-refused').length, 1, 'named once while the refused set did not change');
  t.equal(link.connected(), true);
});
