import { gunzipSync } from 'node:zlib';
import t from 'tap';
import { VirtualClock } from '../agent/core/clock.js';
import { createLogger } from '../agent/core/log.js';
import { LogLevelControl } from '../agent/logs/level.js';
import { PAGE_GZIP_BYTES, packPage } from '../agent/logs/page.js';
import { LEVELS, LogRing, MAX_LINE_BYTES } from '../agent/logs/ring.js';
import { LogService } from '../agent/logs/service.js';

// The log ring (issue 13 item 5) on its own: bounded by bytes, filtered by time and level, read
// by cursor, paged under the message bound, and fed by the real pino logger.

const line = (level: number, time: number, msg: string): string => `${JSON.stringify({ level, time, msg })}\n`;

t.test('bounded by bytes: the oldest lines go first, and the count of bytes never passes the bound', async (t) => {
  const ring = new LogRing(64 * 1024);
  let most = 0;
  for (let i = 0; i < 5000; i++) {
    ring.write(line(30, 1000 + i, `line ${i} ${'x'.repeat(i % 200)}`));
    most = Math.max(most, ring.usedBytes);
  }
  t.ok(most <= ring.maxBytes && most > ring.maxBytes - 1024, `at most ${most} of ${ring.maxBytes} bytes, after every write`);
  const all = ring.select({ lines: 1e9 }).lines;
  t.ok(all.length > 100 && all.length < 5000, `kept ${all.length} of 5000`);
  t.equal(all.at(-1)!.text, line(30, 5999, `line 4999 ${'x'.repeat(4999 % 200)}`).trimEnd(), 'the newest is kept');
  t.same(all.map((l) => l.seq), all.map((_, i) => all[0]!.seq + i), 'consecutive seqs: nothing from the middle is lost');
  t.equal(all[0]!.seq, 5000 - all.length + 1, 'only the oldest went');
  t.equal(ring.stats.evicted, 5000 - all.length);
});

t.test('a line longer than MAX_LINE_BYTES is replaced by one that says so', async (t) => {
  const ring = new LogRing(1024 * 1024);
  ring.write(line(50, 7, 'y'.repeat(MAX_LINE_BYTES + 10)));
  const [l] = ring.select().lines;
  const v = JSON.parse(l!.text) as { level: number; time: number; msg: string };
  t.match(v, { level: 50, time: 7, msg: /^\[log line of \d+ bytes not kept in the ring\]$/ });
  t.ok(l!.text.length < 1024);
});

t.test('since, level, lines and cursor filters', async (t) => {
  const ring = new LogRing(1024 * 1024);
  const levels = [20, 30, 40, 50];
  for (let i = 0; i < 100; i++) ring.write(line(levels[i % 4]!, 10_000 + i * 1000, `m${i}`));
  const msgs = (ls: Array<{ text: string }>): string[] => ls.map((l) => (JSON.parse(l.text) as { msg: string }).msg);

  t.same(msgs(ring.select({ lines: 3 }).lines), ['m97', 'm98', 'm99'], 'the last 3, oldest first');
  t.same(msgs(ring.select({ minLevel: LEVELS.error, lines: 2 }).lines), ['m95', 'm99'], 'errors only');
  t.same(msgs(ring.select({ since: 10_000 + 96 * 1000 }).lines), ['m96', 'm97', 'm98', 'm99'], 'since is inclusive');
  t.same(msgs(ring.select({ since: 10_000 + 90 * 1000, minLevel: LEVELS.warn }).lines), ['m90', 'm91', 'm94', 'm95', 'm98', 'm99']);
  const from = ring.select({ cursor: 51, lines: 2 });
  t.same(msgs(from.lines), ['m50', 'm51'], 'seq 51 is the 51st line, m50');
  t.equal(from.skipped, 0);
  t.same(ring.select({ cursor: 101 }).lines, [], 'nothing newer than the newest');
  t.equal(ring.select().nextSeq, 101);

  const small = new LogRing(4096);
  for (let i = 0; i < 200; i++) small.write(line(30, i, `s${i}`));
  const oldest = small.select({ lines: 1e9 }).lines[0]!.seq;
  const late = small.select({ cursor: 5 });
  t.equal(late.skipped, oldest - 5, 'a cursor overtaken by the ring says how many lines it missed');
  t.equal(late.lines[0]!.seq, oldest);
});

t.test('a page of a large ring fits the budget, and pages in turn cover every line once', async (t) => {
  const ring = new LogRing(8 * 1024 * 1024);
  // Lines of random hex compress poorly: the worst case for the page size.
  for (let i = 0; i < 40_000; i++) ring.write(line(30, i, `n${i} ${Math.random().toString(16).repeat(4)}`));
  let sel = ring.select({ lines: 1e9 }).lines;
  const total = sel.length;
  const seen: string[] = [];
  let pages = 0;
  while (sel.length > 0) {
    const p = await packPage(sel);
    t.ok(p.gz.length <= PAGE_GZIP_BYTES, `page ${pages}: ${p.gz.length} bytes of gzip`);
    t.ok(p.count >= 1);
    seen.push(...gunzipSync(p.gz).toString().split('\n'));
    sel = sel.slice(p.count);
    pages++;
  }
  t.ok(pages > 1, `${pages} pages`);
  t.equal(seen.length, total);
  t.same(seen.map((s) => (JSON.parse(s) as { time: number }).time), seen.map((_, i) => 40_000 - total + i), 'in order, none twice');
});

t.test('fed by pino: redacted lines, the current level, and a level change that reverts at its expiry', async (t) => {
  const ring = new LogRing(1024 * 1024);
  const root = createLogger({ level: 'info', tee: ring, stdout: false });
  const child = root.child({ component: 'link' });
  const clock = new VirtualClock(Date.parse('2026-01-01T00:00:00Z'));
  const control = new LogLevelControl({ logger: root, clock, log: root.child({ component: 'logs' }) });
  const service = new LogService(ring, control);
  await service.start();
  const msgs = async (args: Record<string, unknown> = {}): Promise<Array<{ msg: string; level: number; [k: string]: unknown }>> => {
    const page = await service.logs(args);
    return page.count === 0 ? [] : gunzipSync(Buffer.from(page.data, 'base64')).toString().split('\n').map((l) => JSON.parse(l) as { msg: string; level: number });
  };

  child.info({ mqtt: { password: 'hunter2' } }, 'connecting');
  child.debug('not at info');
  t.same((await msgs()).map((m) => m.msg), ['connecting']);
  t.same((await msgs())[0]!.mqtt, { password: '[redacted]' }, 'redacted before the ring sees it');

  t.match(service.logLevel({ level: 'debug', expiresInSec: 60 }), { level: 'debug', base: 'info', expiresAt: '2026-01-01T00:01:00.000Z' });
  child.debug('at debug');
  t.ok((await msgs()).some((m) => m.msg === 'at debug'), 'a child logger follows the root level');
  await clock.advanceBy(59_999);
  child.debug('still debug');
  t.ok((await msgs()).some((m) => m.msg === 'still debug'));
  await clock.advanceBy(1);
  child.debug('after expiry');
  const after = await msgs();
  t.notOk(after.some((m) => m.msg === 'after expiry'), 'back to info at the expiry');
  t.match(after.at(-1), { msg: 'log level reverted', from: 'debug', to: 'info', why: 'expired' });
  t.same(control.state(), { level: 'info', base: 'info' });

  t.throws(() => service.logLevel({ level: 'loud' }), /args\.level/);
  t.throws(() => service.logLevel({ level: 'debug', expiresInSec: 86_401 }), /args\.expiresInSec/);
  await t.rejects(service.logs({ since: '2026-01-01T00:00:00' }), /args\.since/, 'a time without an offset is refused');
  await t.rejects(service.logs({ lines: 0 }), /args\.lines/);

  service.logLevel({ level: 'debug', expiresInSec: 3600 });
  t.same(service.logLevel({ level: 'info' }), { level: 'info', base: 'info' }, 'the base level ends a change at once');
  await clock.advanceBy(3600_000);
  t.equal(root.level, 'info', 'and its timer is gone');
  service.logLevel({ level: 'trace', expiresInSec: 3600 });
  await service.stop();
  t.equal(root.level, 'info', 'stop ends a change in force');
  const warns = await msgs({ level: 'warn' });
  t.same(warns.map((m) => m.msg), ['log level changed', 'log level reverted', 'log level changed', 'log level changed', 'log level changed', 'log level reverted'], 'level filter on real lines');
});
