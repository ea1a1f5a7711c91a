import path from 'node:path';
import t, { type Test } from 'tap';
import type { z } from 'zod';
import { silentLogger } from '../agent/core/log.js';
import {
  DELIVERY, Topics, agentEvent, agentEventSchema, commandError, commandOk, commandResultSchema, commandSchema, deviceTopic, encode,
  encodeCommandResult, encodeEvent, encodeHeartbeat, encodePlayEvent, encodeStatus, encodeStatusBytes, fleetTopic, groupTopic, heartbeat,
  heartbeatSchema, parseDeviceTopic, playEvent, playEventSchema, statusOffline, statusOnline, statusSchema, typedPublisher,
  type Delivery, type PlayEvent, type PlayFacts, type ProtocolTopics,
} from '../agent/protocol/index.js';
import { SqliteStore } from '../agent/store/sqlite-store.js';
import { tempDir } from './helpers/tmp.js';

// Each outbound message: built from values, encoded once, decoded by its schema back to the same
// document, with the field names PROTOCOL.md §3, §7 and §8 give it (spelled out here from the page,
// so a rename in the schema fails this test rather than the NOC).

const FACTS: PlayFacts = {
  deviceId: 'dev-1', storeId: '0123456789abcdef', seq: 42, campaignId: 'ihanoi-2024', mediaSha256: 'a'.repeat(64), day: '2024-08-15',
  scheduledAt: Date.UTC(2024, 7, 15, 0, 30), startedAt: Date.UTC(2024, 7, 15, 0, 30, 0, 120), endedAt: Date.UTC(2024, 7, 15, 0, 30, 30, 120),
  durationMs: 30_000, outcome: 'completed', inWindow: true, played: 4, target: 10, display: 'connected', clockSynced: true,
};

function roundTrip<S extends z.ZodType>(t: Test, schema: S, text: string, doc: unknown, fields: string[]): void {
  const parsed = schema.safeParse(JSON.parse(text));
  t.ok(parsed.success, parsed.success ? 'decodes with its schema' : parsed.error.message);
  if (!parsed.success) return;
  t.same(parsed.data, doc, 'the decoded document is the one encoded');
  t.equal(JSON.stringify(parsed.data), text, 'and encodes to the same bytes again');
  t.same(Object.keys(JSON.parse(text) as object), fields, 'PROTOCOL.md field names, in order');
}

t.test('play event (§8): eventId from its parts, instants as ISO, byte-identical to the store format', async (t) => {
  const ev = playEvent(FACTS);
  const text = encodePlayEvent(ev);
  t.equal(
    text,
    '{"eventId":"dev-1:0123456789abcdef:42","seq":42,"storeId":"0123456789abcdef","deviceId":"dev-1","campaignId":"ihanoi-2024",' +
      `"mediaSha256":"${'a'.repeat(64)}","day":"2024-08-15","scheduledAt":"2024-08-15T00:30:00.000Z","startedAt":"2024-08-15T00:30:00.120Z",` +
      '"endedAt":"2024-08-15T00:30:30.120Z","durationMs":30000,"outcome":"completed","inWindow":true,"played":4,"target":10,' +
      '"display":"connected","clockSynced":true}',
  );
  roundTrip(t, playEventSchema, text, ev, [
    'eventId', 'seq', 'storeId', 'deviceId', 'campaignId', 'mediaSha256', 'day', 'scheduledAt', 'startedAt', 'endedAt', 'durationMs',
    'outcome', 'inWindow', 'played', 'target', 'display', 'clockSynced',
  ]);
  // Whatever order an object was put together in, the bytes are the contract's.
  const shuffled = Object.fromEntries(Object.entries(ev).reverse()) as PlayEvent;
  t.equal(encodePlayEvent(shuffled), text, 'field order fixed by the encoder, not by the caller');
  t.equal(encode('play', ev), text, 'the topic map encodes play with the same encoder');
});

t.test('the store queues the encoder\'s bytes for a closed play', async (t) => {
  const s = new SqliteStore({ file: path.join(tempDir(t, 'proto-'), 'agent.db'), log: silentLogger() });
  await s.start();
  t.teardown(() => s.stop());
  const id = await s.recordPlayStart({ campaignId: 'c1', mediaSha256: 'b'.repeat(64), day: '2024-08-15', scheduledAt: 1000, startedAt: 1010, inWindow: true, display: 'unknown', clockSynced: false });
  const ev = await s.recordPlayEnd(id, { endedAt: 31_010, durationMs: 30_000, outcome: 'completed', target: 3 }, 'dev-1');
  const [row] = await s.outboxPeek(1);
  t.equal(row?.payload, encodePlayEvent(ev));
  t.same(ev, playEvent({ deviceId: 'dev-1', storeId: s.storeId(), seq: 1, campaignId: 'c1', mediaSha256: 'b'.repeat(64), day: '2024-08-15', scheduledAt: 1000, startedAt: 1010, endedAt: 31_010, durationMs: 30_000, outcome: 'completed', inWindow: true, played: 1, target: 3, display: 'unknown', clockSynced: false }));
  await s.recordEvent(agentEvent(5, 'applied', { source: 'device', version: 7 }));
  const [, evRow] = await s.outboxPeek(2);
  t.equal(evRow?.payload, '{"ts":"1970-01-01T00:00:00.005Z","type":"applied","detail":{"source":"device","version":7}}');
});

t.test('event (§3): {ts, type, detail}', async (t) => {
  const e = agentEvent(Date.UTC(2024, 7, 15), 'clock-jump', { from: 'a', to: 'b' });
  const text = encodeEvent(e);
  t.equal(text, '{"ts":"2024-08-15T00:00:00.000Z","type":"clock-jump","detail":{"from":"a","to":"b"}}');
  roundTrip(t, agentEventSchema, text, e, ['ts', 'type', 'detail']);
});

t.test('status (§8): birth with storeId, agentVersion, bootedAt, applied; the Will', async (t) => {
  // Computed by core/desired.ts appliedVersions (its tests in desired.test.ts); here only its wire form.
  const applied = { device: 7, groups: { all: 3 }, overrides: { groups: { all: 4 } } };
  const birth = statusOnline({ session: 12, storeId: 'abc', agentVersion: '0.1.0', bootedAt: Date.UTC(2024, 7, 15), applied });
  const text = encodeStatus(birth);
  t.equal(text, '{"online":true,"session":12,"storeId":"abc","agentVersion":"0.1.0","bootedAt":"2024-08-15T00:00:00.000Z","applied":{"device":7,"groups":{"all":3},"overrides":{"groups":{"all":4}}}}');
  roundTrip(t, statusSchema, text, birth, ['online', 'session', 'storeId', 'agentVersion', 'bootedAt', 'applied']);
  const will = statusOffline(12);
  t.equal(encodeStatusBytes(will).toString('utf8'), '{"online":false,"session":12}', 'the Will as bytes for the broker');
  roundTrip(t, statusSchema, encodeStatus(will), will, ['online', 'session']);
});

t.test('heartbeat (§8): the link\'s fields around the agent\'s, backlog last', async (t) => {
  const fields = {
    storeId: 'abc', store: { state: 'ok' as const, pending: 0 }, cpuTempC: null, load1: 0.5, memUsedPct: 40, diskFreeMB: 900,
    player: { state: 'playing' as const, campaignId: 'c1', url: 'file:///x.mp4' }, clockSynced: true, display: 'unknown' as const,
    compliance: [{ campaignId: 'c1', day: '2024-08-15', played: 4, target: 10, onTrack: true }],
  };
  const hb = heartbeat({ now: 61_400, deviceId: 'dev-1', bootedAt: 1000, fields, backlog: 2 });
  t.equal(hb.uptimeSec, 60);
  roundTrip(t, heartbeatSchema, encodeHeartbeat(hb), hb, [
    'ts', 'deviceId', 'uptimeSec', 'storeId', 'store', 'cpuTempC', 'load1', 'memUsedPct', 'diskFreeMB', 'player', 'clockSynced', 'display',
    'compliance', 'backlog',
  ]);
  const basics = heartbeat({ now: 500, deviceId: 'dev-1', bootedAt: 1000, fields: {}, backlog: 0 });
  roundTrip(t, heartbeatSchema, encodeHeartbeat(basics), basics, ['ts', 'deviceId', 'uptimeSec', 'backlog']);
  t.equal(basics.uptimeSec, 0, 'a clock behind bootedAt never gives a negative uptime');
});

t.test('command result (§7): {id, ok, result} or {id, ok, error}', async (t) => {
  const ok = commandOk('c-42', { pong: true });
  t.equal(encodeCommandResult(ok), '{"id":"c-42","ok":true,"result":{"pong":true}}');
  roundTrip(t, commandResultSchema, encodeCommandResult(ok), ok, ['id', 'ok', 'result']);
  const bad = commandError(null, 'payload is not JSON');
  roundTrip(t, commandResultSchema, encodeCommandResult(bad), bad, ['id', 'ok', 'error']);
  t.equal(encode('cmd/result', bad), encodeCommandResult(bad));
});

t.test('inbound documents encode for operator tools; an empty override clears', async (t) => {
  const cmd = { id: 'c-1', name: 'ping', expiresAt: '2024-08-15T00:00:00Z' };
  t.same(commandSchema.parse(JSON.parse(encode('cmd', cmd))), cmd);
  t.equal(encode('override', null), '', 'the empty payload clears an override (§5)');
  t.equal(encode('override', { version: 3, campaigns: { c1: { timesPerDay: 20 } } }), '{"version":3,"campaigns":{"c1":{"timesPerDay":20}}}');
});

t.test('topics (§3): built once, parsed back', async (t) => {
  t.equal(deviceTopic('signage', 'hn-1', 'cmd/result'), 'signage/device/hn-1/cmd/result');
  t.equal(deviceTopic('signage', '+', 'status'), 'signage/device/+/status', 'a wildcard id for subscriptions and ACLs');
  t.equal(groupTopic('signage', 'all', 'override'), 'signage/group/all/override');
  t.equal(fleetTopic('signage', 'fleet/alert'), 'signage/fleet/alert');
  t.same(parseDeviceTopic('signage', 'signage/device/hn-1/cmd/result'), { deviceId: 'hn-1', kind: 'cmd/result' });
  t.equal(parseDeviceTopic('signage', 'signage/device/hn-1/nope'), undefined);
  t.equal(parseDeviceTopic('signage', 'other/device/hn-1/status'), undefined);
  const topics = new Topics('p', 'd1', ['all', 'hk']);
  t.same(Object.keys(topics.subscriptions()), ['p/device/d1/assignment', 'p/device/d1/override', 'p/device/d1/cmd', 'p/device/d1/status', 'p/group/all/assignment', 'p/group/all/override', 'p/group/hk/assignment', 'p/group/hk/override', 'p/device/d1/alert', 'p/group/all/alert', 'p/group/hk/alert', 'p/fleet/alert']);
  t.same([topics.status, topics.heartbeat, topics.cmdResult, topics.outbox('play'), topics.outbox('event')], ['p/device/d1/status', 'p/device/d1/heartbeat', 'p/device/d1/cmd/result', 'p/device/d1/play', 'p/device/d1/event']);
});

t.test('typed publish: topic, bytes and §3 delivery from the kind', async (t) => {
  const sent: Array<[string, string, Delivery]> = [];
  const topics = new Topics('p', 'd1', []);
  const publish = typedPublisher((k) => topics.of(k), (topic, payload, opts) => sent.push([topic, payload, opts]));
  publish('status', statusOffline(3));
  publish('heartbeat', heartbeat({ now: 0, deviceId: 'd1', bootedAt: 0, fields: {}, backlog: 0 }));
  publish('cmd/result', commandOk('c', {}), { topic: 'reply/here', correlationData: Buffer.from('c') });
  t.same(sent.map(([topic, , o]) => [topic, o]), [
    ['p/device/d1/status', { qos: 1, retain: true }],
    ['p/device/d1/heartbeat', { qos: 0 }],
    ['reply/here', { qos: 1, correlationData: Buffer.from('c') }],
  ]);
  t.equal(sent[0]?.[1], '{"online":false,"session":3}');
  t.same(DELIVERY.play, { qos: 1, retain: false });

  // The map is checked by the compiler (tests are type-checked by tsc): these lines must not compile.
  const wrong = (): void => {
    // @ts-expect-error a heartbeat is not a play event
    publish('play', heartbeat({ now: 0, deviceId: 'd1', bootedAt: 0, fields: {}, backlog: 0 }));
    // @ts-expect-error a status needs its session
    encode('status', { online: false });
    // @ts-expect-error not a topic kind of the contract
    encode('presence', {});
    const payload: ProtocolTopics['event'] = agentEvent(0, 'x', null);
    // @ts-expect-error an event on the status topic
    publish('status', payload);
  };
  t.type(wrong, 'function');
});
