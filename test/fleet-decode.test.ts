// The ingest's decoder on its own: every reason a device topic's bytes are dropped, and that a
// good play keeps its bytes as received (the archive's proof is the screen's own text).
import t from 'tap';
import { deviceTopic, encode } from '../agent/protocol/index.js';
import { decodeMessage, MAX_PAYLOAD } from '../fleet/ingest/decode.js';
import { plays } from './helpers/fleet-rig.js';

const topic = (kind: string, id = 'dc-1'): string => deviceTopic('signage', id, kind as never);
const play = plays('dc-1', 'dddd000000000001', [7])[0]!;

const reason = (topic: string, payload: Buffer): string => {
  const d = decodeMessage('signage', topic, payload);
  return d.ok ? 'ok' : d.reason;
};

t.test('a good play decodes and keeps its bytes', async (t) => {
  const text = encode('play', { ...play, campaignId: 'spot-é' });
  const d = decodeMessage('signage', topic('play'), Buffer.from(text));
  if (!d.ok) return t.fail(d.reason);
  t.equal(d.item.kind, 'play');
  t.equal(d.item.raw, text, 'the text as received, multi-byte characters included');
  t.equal(d.item.deviceId, 'dc-1');
});

t.test('bytes that are not UTF-8 are dropped as such, whatever else they hold', async (t) => {
  const good = Buffer.from(encode('play', play));
  const cases: Array<[string, Buffer]> = [
    ['a byte UTF-8 never uses', Buffer.concat([good.subarray(0, 10), Buffer.from([0xff]), good.subarray(10)])],
    ['an overlong "/"', Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')])],
    ['a lone surrogate', Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')])],
    ['a truncated sequence at the end', Buffer.concat([Buffer.from('{"a":1}'), Buffer.from([0xe2, 0x82])])],
  ];
  for (const [what, bytes] of cases) t.equal(reason(topic('play'), bytes), 'payload is not UTF-8', what);
});

t.test('every other reason, named', async (t) => {
  t.match(reason('signage/other/dc-1/play', Buffer.from('{}')), /^not a telemetry topic/);
  t.match(reason(topic('command'), Buffer.from('{}')), /^not a telemetry topic/);
  t.equal(reason(topic('play'), Buffer.alloc(0)), 'empty payload');
  t.match(reason(topic('play'), Buffer.alloc(MAX_PAYLOAD + 1, 0x20)), /^payload too large: 262145 bytes/);
  t.match(reason(topic('play'), Buffer.from('{not json')), /^payload is not JSON/);
  t.match(reason(topic('play'), Buffer.from(JSON.stringify({ seq: 'one' }))), /^invalid play/);
  t.match(reason(topic('play', 'dc-2'), Buffer.from(encode('play', play))), /^spoofed: play of dc-1 on dc-2's topic/);
  t.match(reason(topic('play'), Buffer.from(JSON.stringify({ ...play, eventId: 'dc-1:x:7' }))), /^eventId dc-1:x:7 is not/);
});
