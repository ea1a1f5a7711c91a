import path from 'node:path';
import t from 'tap';
import { pino } from 'pino';
import { VirtualClock } from '../agent/core/clock.js';
import { silentLogger } from '../agent/core/log.js';
import type { AgentEvent } from '../agent/core/types.js';
import { EventRecorder } from '../agent/events/recorder.js';
import { SqliteStore } from '../agent/store/sqlite-store.js';
import { tempDir } from './helpers/tmp.js';

// The one event recorder: a row in the outbox as `{"ts","type","detail"}`, then the outbox's
// owner woken; a store that refuses the row is logged, never thrown into the part that raised it.

const AT = Date.parse('2024-08-15T01:02:03.004Z');

t.test('records {"ts","type","detail"} in the outbox, then wakes the listeners', async (t) => {
  const store = new SqliteStore({ file: path.join(tempDir(t, 'events-'), 'agent.db'), log: silentLogger() });
  await store.start();
  t.teardown(() => store.stop());
  const events = new EventRecorder({ store, clock: new VirtualClock(AT), log: silentLogger() });
  const woken: string[] = [];
  const counts: Array<Promise<number>> = [];
  events.onRecorded(() => {
    woken.push('first');
    counts.push(store.outboxCount());
  });
  events.onRecorded(() => void woken.push('second'));
  await events.record('media-failed', { url: 'https://cdn.example/x.mp4', sha256: 'a'.repeat(64), reason: 'sha256 mismatch' });
  await events.record('clock-jump', { from: '2024-08-15T01:00:00.000Z', to: '2024-08-15T03:00:00.000Z', deltaMs: 7_200_000 }, '2024-08-15T03:00:00.000Z');
  const rows = (await store.outboxPeek(10)).map((r) => [r.kind, r.payload, r.createdAt]);
  t.same(rows, [
    ['event', `{"ts":"2024-08-15T01:02:03.004Z","type":"media-failed","detail":{"url":"https://cdn.example/x.mp4","sha256":"${'a'.repeat(64)}","reason":"sha256 mismatch"}}`, AT],
    ['event', '{"ts":"2024-08-15T03:00:00.000Z","type":"clock-jump","detail":{"from":"2024-08-15T01:00:00.000Z","to":"2024-08-15T03:00:00.000Z","deltaMs":7200000}}', Date.parse('2024-08-15T03:00:00.000Z')],
  ], 'the payload as published, ts from the clock unless the caller read it already');
  t.same(woken, ['first', 'second', 'first', 'second'], 'each listener, in order, once per row');
  t.same(await Promise.all(counts), [1, 2], 'woken once the row is in the store');
});

t.test('a store that refuses the row: logged, no wake-up, never thrown; a throwing listener neither', async (t) => {
  const lines: Array<{ level: number; msg: string; type?: string }> = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  let fail = true;
  const written: AgentEvent[] = [];
  const store = {
    recordEvent: async (e: AgentEvent): Promise<void> => {
      if (fail) throw Object.assign(new Error('SQLITE_IOERR: disk I/O error'), { code: 'SQLITE_IOERR' });
      written.push(e);
    },
  };
  const events = new EventRecorder({ store, clock: new VirtualClock(AT), log });
  let woken = 0;
  events.onRecorded(() => {
    woken++;
    throw new Error('listener broke');
  });
  await t.resolves(events.record('player-restarted', { reason: 'crash' }));
  t.equal(woken, 0, 'nothing to send: nobody woken');
  t.match(lines, [{ level: 50, msg: 'could not record an event', type: 'player-restarted' }]);
  fail = false;
  await t.resolves(events.record('outbox-dropped', { count: 3, max: 10 }), 'a listener that throws is its own problem');
  t.equal(woken, 1);
  t.same(written, [{ ts: '2024-08-15T01:02:03.004Z', type: 'outbox-dropped', detail: { count: 3, max: 10 } }]);
  t.equal(lines.filter((l) => l.level === 50).length, 2, 'the listener failure logged too');
});
