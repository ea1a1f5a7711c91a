import { generateKeyPairSync, sign } from 'node:crypto';
import t from 'tap';
import { keyIdOf } from '../agent/protocol/envelope.js';
import { assignment, FakeHost, makeLink, Observer, rig, topic, DEVICE } from './helpers/link-rig.js';
import { waitFor } from './helpers/wait.js';

// These tests check the reason of every rejection, one event each: coalescing (at most one
// `rejected` row per topic per minute, PROTOCOL v1.1 §3) is off here and tested in link-flood.test.ts.
const EACH_REJECTION = { rejectedWindowMs: 0 };

const lastStatus = (o: Observer): any => o.on('status').at(-1)!.json();

t.test('device assignment: stored, applied event, host re-plans, status lists the version', async (t) => {
  const r = await rig(t);
  await r.obs.publish(topic.device('assignment'), JSON.stringify(assignment(7)), { retain: true });
  await waitFor('applied event', () => r.obs.events('applied').length === 1);
  t.same(r.obs.events('applied')[0].detail, { topic: topic.device('assignment'), kind: 'assignment', source: 'device', version: 7 });
  t.equal(await r.store.appliedVersion('assignment', 'device'), 7);
  const d = await r.store.loadDesired();
  t.equal((d.assignments[0]!.doc as any).campaigns[0].id, 'c1');
  t.equal(r.host.desiredChanged, 1, 'host told to re-plan');
  await waitFor('status with applied', () => lastStatus(r.obs).applied.device === 7);
  t.same(lastStatus(r.obs).applied, { device: 7, groups: {}, overrides: { groups: {} } });
});

t.test('group and device topics are both received; versions per topic', async (t) => {
  const r = await rig(t);
  await r.obs.publish(topic.group('all', 'assignment'), JSON.stringify(assignment(3, ['g1'])), { retain: true });
  await r.obs.publish(topic.group('hoan-kiem', 'assignment'), JSON.stringify(assignment(1, ['g2'])), { retain: true });
  await r.obs.publish(topic.group('not-mine', 'assignment'), JSON.stringify(assignment(9, ['x'])), { retain: true });
  await r.obs.publish(topic.device('assignment'), JSON.stringify(assignment(2, ['d1'])), { retain: true });
  await waitFor('three applied', () => r.obs.events('applied').length === 3);
  await waitFor('status', () => lastStatus(r.obs).applied.device === 2 && Object.keys(lastStatus(r.obs).applied.groups).length === 2);
  t.same(lastStatus(r.obs).applied, { device: 2, groups: { all: 3, 'hoan-kiem': 1 }, overrides: { groups: {} } });
  t.same(r.obs.events('applied').map((e) => e.detail.source).sort(), ['device', 'group/all', 'group/hoan-kiem']);
  t.equal(await r.store.appliedVersion('assignment', 'group/not-mine'), 0, 'groups not in the config are not subscribed');
});

t.test('stale versions are rejected; the retained copy re-delivered on reconnect is ignored quietly', async (t) => {
  const r = await rig(t, {}, EACH_REJECTION);
  await r.obs.publish(topic.device('assignment'), JSON.stringify(assignment(7)), { retain: true });
  await waitFor('applied', () => r.obs.events('applied').length === 1);
  await r.obs.publish(topic.device('assignment'), JSON.stringify(assignment(5, ['old'])));
  await waitFor('rejected', () => r.obs.events('rejected').length === 1);
  t.same(r.obs.events('rejected')[0].detail, { topic: topic.device('assignment'), reason: 'stale version 5 <= 7' });
  await r.obs.publish(topic.device('assignment'), JSON.stringify(assignment(7, ['other'])));
  await waitFor('rejected same version, other content', () => r.obs.events('rejected').length === 2);
  t.equal(r.obs.events('rejected')[1].detail.reason, 'stale version 7 <= 7');
  const d = await r.store.loadDesired();
  t.equal((d.assignments[0]!.doc as any).campaigns[0].id, 'c1', 'plan in force untouched');

  // The broker still holds v5 retained? No: it holds the last retained publish, v7. Restart the
  // agent (same store): the retained v7 comes again and must not produce any event.
  await r.link.stop();
  const link2 = makeLink(t, r.config, r.store, r.host);
  await link2.start();
  await waitFor('birth 2', () => r.obs.on('status').some((m) => m.json().session === 2));
  // The intake is serial: once a later document is applied, the retained one was handled.
  await r.obs.publish(topic.device('assignment'), JSON.stringify(assignment(8)), { retain: true });
  await waitFor('v8 applied', () => r.obs.events('applied').length === 2);
  t.equal(r.obs.events('rejected').length, 2, 'no rejection for the re-delivered retained v7');
  t.equal(r.host.desiredChanged, 2, 'v7 and v8 only');
});

t.test('override set, then cleared by an empty retained payload', async (t) => {
  const r = await rig(t);
  const ov = { version: 3, campaigns: { c1: { timesPerDay: 20 } }, expiresAt: '2030-01-01T00:00:00+07:00' };
  await r.obs.publish(topic.device('override'), JSON.stringify(ov), { retain: true });
  await r.obs.publish(topic.group('all', 'override'), JSON.stringify({ version: 1, campaigns: { c1: { windows: ['10:00-11:00'] } } }), { retain: true });
  await waitFor('two applied', () => r.obs.events('applied').length === 2);
  await waitFor('status', () => lastStatus(r.obs).applied.overrides.device === 3 && lastStatus(r.obs).applied.overrides.groups.all === 1);
  let d = await r.store.loadDesired();
  t.same(d.overrides.find((o) => o.source === 'device')!.doc, ov);

  await r.obs.publish(topic.device('override'), '', { retain: true });
  await waitFor('cleared', () => r.obs.events('applied').length === 3);
  t.same(r.obs.events('applied')[2].detail, { topic: topic.device('override'), kind: 'override', source: 'device', version: 3, cleared: true });
  d = await r.store.loadDesired();
  t.equal(d.overrides.find((o) => o.source === 'device')!.doc, null, 'cleared in the store');
  t.equal(await r.store.appliedVersion('override', 'device'), 3, 'version kept, so v3 cannot come back');
  await waitFor('status without the device override', () => lastStatus(r.obs).applied.overrides.device === undefined);
  t.equal(lastStatus(r.obs).applied.overrides.groups.all, 1);
  t.equal(r.host.desiredChanged, 3);
  // Re-sending v3 after the clear is stale.
  await r.obs.publish(topic.device('override'), JSON.stringify(ov));
  await waitFor('rejected', () => r.obs.events('rejected').length === 1);
  t.equal(r.obs.events('rejected')[0].detail.reason, 'stale version 3 <= 3');
});

t.test('v1.1 forward compatibility: unknown fields at the top, in a campaign and in its media are ignored and the assignment applied', async (t) => {
  const r = await rig(t);
  const doc: any = assignment(7);
  doc.publishedBy = 'noc-tool 3.0';
  doc.campaigns[0].advertiser = 'iHanoi';
  doc.campaigns[0].media.codec = 'h264';
  await r.obs.publish(topic.device('assignment'), JSON.stringify(doc), { retain: true });
  await waitFor('applied event', () => r.obs.events('applied').length + r.obs.events('rejected').length === 1);
  t.same(r.obs.events('rejected'), [], 'nothing rejected');
  t.same(r.obs.events('applied')[0]?.detail, { topic: topic.device('assignment'), kind: 'assignment', source: 'device', version: 7 });
  const stored = (await r.store.loadDesired()).assignments[0]!.doc as any;
  t.same(stored, assignment(7), 'stored with the fields this agent knows');
  t.equal(r.host.desiredChanged, 1, 'host told to re-plan');
  // A wrong type of a known field is still a rejection naming the field, unknown fields or not.
  const bad: any = assignment(8);
  bad.publishedBy = 'noc-tool 3.0';
  bad.campaigns[0].media.durationMs = 'thirty seconds';
  await r.obs.publish(topic.device('assignment'), JSON.stringify(bad));
  await waitFor('rejected', () => r.obs.events('rejected').length === 1);
  t.match(r.obs.events('rejected')[0].detail.reason, /campaigns\.0\.media\.durationMs/);
  t.equal(await r.store.appliedVersion('assignment', 'device'), 7, 'plan in force untouched');
});

t.test('hostile payloads: each rejected with topic and reason, plan untouched, link alive', async (t) => {
  const r = await rig(t, {}, EACH_REJECTION);
  await r.obs.publish(topic.device('assignment'), JSON.stringify(assignment(7)), { retain: true });
  await waitFor('applied', () => r.obs.events('applied').length === 1);
  const a = (patch: (x: any) => void): string => {
    const x: any = assignment(8);
    patch(x);
    return JSON.stringify(x);
  };
  const cases: [string, string | Buffer, RegExp, string?][] = [
    ['non-JSON', '{"version": 8, campaigns', /not JSON/],
    ['invalid UTF-8', Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), /not UTF-8/],
    ['over 256 KiB', JSON.stringify({ ...assignment(8), pad: 'x'.repeat(262_144) }), /payload too large/],
    ['JSON but an array', '[1,2,3]', /invalid/],
    ['JSON null', 'null', /invalid/],
    ['bad campaign id', a((x) => { x.campaigns[0].id = '../etc/passwd'; }), /campaigns\.0\.id/],
    ['bad sha256', a((x) => { x.campaigns[0].media.sha256 = 'abc'; }), /sha256/],
    ['negative count', a((x) => { x.campaigns[0].timesPerDay = -1; }), /timesPerDay/],
    ['wrong type beside an unknown field', a((x) => { x.campaigns[0].colour = 'red'; x.campaigns[0].timesPerDay = '10'; }), /campaigns\.0\.timesPerDay/],
    ['wrong type', a((x) => { x.version = '8'; }), /version/],
    ['bad window', a((x) => { x.campaigns[0].windows = ['25:00-26:00']; }), /windows/],
    ['bad url scheme', a((x) => { x.campaigns[0].media.url = 'javascript:alert(1)'; }), /url/],
    ['duplicate campaign ids', a((x) => { x.campaigns.push(x.campaigns[0]); }), /unique/],
    ['target of another screen', a((x) => { x.target = 'device/someone-else'; }), /target/],
    ['empty assignment', '', /empty payload/],
    ['override with bad count', JSON.stringify({ version: 9, campaigns: { c1: { timesPerDay: 1e9 } } }), /timesPerDay/, 'override'],
    ['group override, not JSON', '\u0000\u0001', /not JSON/, 'group-override'],
  ];
  for (const [name, payload, reason, where] of cases) {
    const tp = where === 'override' ? topic.device('override') : where === 'group-override' ? topic.group('all', 'override') : topic.device('assignment');
    const before = r.obs.events('rejected').length;
    await r.obs.publish(tp, payload);
    await waitFor(`rejection of ${name}`, () => r.obs.events('rejected').length === before + 1);
    const ev = r.obs.events('rejected').at(-1);
    t.equal(ev.detail.topic, tp, `${name}: names the topic`);
    t.match(ev.detail.reason, reason, `${name}: ${ev.detail.reason}`);
  }
  // Beyond the MQTT 5 maximum packet size we announce (4 MiB) the broker drops it for us: no event.
  const huge = JSON.stringify({ ...assignment(9), pad: 'x'.repeat(5 * 1024 * 1024) });
  await r.obs.publish(topic.device('assignment'), huge);
  t.equal(await r.store.appliedVersion('assignment', 'device'), 7, 'plan in force untouched');
  t.equal(r.link.connected(), true, 'link alive');
  await r.obs.publish(topic.device('assignment'), JSON.stringify(assignment(8)));
  await waitFor('valid one still applies', () => r.obs.events('applied').length === 2);
  t.equal(r.obs.events('rejected').length, cases.length, 'the 5 MiB publish never reached the agent (dropped by the broker)');
});

t.test('§9 signed envelopes: verified, target-bound, unsigned rejected', async (t) => {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(12);
  const pem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
  const other = generateKeyPairSync('ed25519');
  const r = await rig(t, { security: { assignmentKeys: [raw.toString('base64'), `ops:${pem}`] } }, EACH_REJECTION);
  const keyId = keyIdOf(raw);
  // v1.1: a signed document carries issuedAt (the test's documents get one unless they name their own).
  const envelope = (doc: object, id = keyId, key = privateKey): string => {
    const bytes = Buffer.from(JSON.stringify({ issuedAt: new Date().toISOString(), ...doc }));
    return JSON.stringify({ payload: bytes.toString('base64'), sig: sign(null, bytes, key).toString('base64'), keyId: id });
  };
  const target = `device/${DEVICE}`;
  await r.obs.publish(topic.device('assignment'), envelope({ ...assignment(1), target }));
  await waitFor('signed applied', () => r.obs.events('applied').length === 1);
  await r.obs.publish(topic.device('assignment'), envelope({ ...assignment(2), target }, 'ops'));
  await waitFor('signed with the named PEM key applied', () => r.obs.events('applied').length === 2);
  await r.obs.publish(topic.group('all', 'assignment'), envelope({ ...assignment(1), target: 'group/all' }));
  await waitFor('signed group applied', () => r.obs.events('applied').length === 3);

  const bad: [string, string, RegExp][] = [
    ['plain JSON', JSON.stringify({ ...assignment(5), target }), /signed envelope required/],
    ['wrong key', envelope({ ...assignment(5), target }, keyId, other.privateKey), /bad signature/],
    ['unknown keyId', envelope({ ...assignment(5), target }, 'nope'), /unknown keyId/],
    ['no target', envelope(assignment(5)), /must name its target/],
    ['replayed from another screen', envelope({ ...assignment(5), target: 'device/other' }), /does not match/],
    ['group doc replayed on the device topic', envelope({ ...assignment(5), target: 'group/all' }), /does not match/],
    ['old version replayed', envelope({ ...assignment(1), target }), /stale version 1 <= 2/],
    ['tampered payload', JSON.stringify({ ...JSON.parse(envelope({ ...assignment(5), target })), payload: Buffer.from(JSON.stringify({ ...assignment(6), target })).toString('base64') }), /bad signature/],
    ['empty (no unsigned clears)', '', /empty payload/],
  ];
  for (const [name, payload, reason] of bad) {
    const before = r.obs.events('rejected').length;
    await r.obs.publish(topic.device(name.startsWith('empty') ? 'override' : 'assignment'), payload);
    await waitFor(name, () => r.obs.events('rejected').length === before + 1);
    t.match(r.obs.events('rejected').at(-1).detail.reason, reason, `${name}: ${r.obs.events('rejected').at(-1).detail.reason}`);
  }
  t.equal(await r.store.appliedVersion('assignment', 'device'), 2);
});

t.test('applied documents survive a restart with the broker down', async (t) => {
  const r = await rig(t);
  await r.obs.publish(topic.device('assignment'), JSON.stringify(assignment(7)), { retain: true });
  await r.obs.publish(topic.group('all', 'override'), JSON.stringify({ version: 2, campaigns: { c1: { timesPerDay: 3 } } }), { retain: true });
  await waitFor('applied', () => r.obs.events('applied').length === 2);
  await r.link.stop();
  await r.broker.stop();
  // A new host, as after a restart: its applier knows only what it reads from the store.
  const host2 = new FakeHost();
  const link2 = makeLink(t, r.config, r.store, host2);
  await link2.start();
  t.equal(link2.connected(), false, 'broker down');
  await host2.desired!.idle();
  t.same(link2.applied(), { device: 7, groups: {}, overrides: { groups: { all: 2 } } }, 'the plan in force is still there');
  const d = await r.store.loadDesired();
  t.equal((d.assignments[0]!.doc as any).version, 7);
});
