import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import t, { type Test } from 'tap';
import { silentLogger } from '../agent/core/log.js';
import { LineSplitter, MpvCommandError, MpvIpc, type EndFileEvent } from '../agent/player/mpv-ipc.js';
import { HEADLESS, makeClip } from './helpers/clips.js';
import { waitedFor, waitFor } from './helpers/wait.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** SIGSTOP, then wait until the kernel shows it stopped: mpv must not answer what we send next. */
async function freeze(pid: number): Promise<void> {
  process.kill(pid, 'SIGSTOP');
  const stopped = (): boolean => {
    try {
      return / T /.test(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/\(.*\)/, ''));
    } catch {
      return false;
    }
  };
  await waitFor('mpv stopped (SIGSTOP)', stopped, 10_000);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function startIpc(t: Test, extra: string[] = []): MpvIpc {
  const ipc = new MpvIpc({ mpvPath: 'mpv', args: [...HEADLESS, '--idle=yes', ...extra], log: silentLogger() });
  t.teardown(() => ipc.stop());
  return ipc;
}

t.test('line splitter: any chunking yields the same messages, multibyte characters intact', async (t) => {
  const msgs = Array.from({ length: 30 }, (_, i) => JSON.stringify({ request_id: i, data: `Hà Nội ✓ ${'x'.repeat(i * 7)}` }));
  const bytes = Buffer.from(msgs.join('\n') + '\n');
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 40 }), (cuts) => {
      const points = [...new Set(cuts)].sort((a, b) => a - b);
      const sp = new LineSplitter();
      const out: string[] = [];
      let prev = 0;
      for (const p of [...points, bytes.length]) {
        out.push(...sp.push(bytes.subarray(prev, p)));
        prev = p;
      }
      return JSON.stringify(out) === JSON.stringify(msgs);
    }),
  );
  const sp = new LineSplitter();
  t.same(sp.push(Buffer.from('{"a":1}\n{"b":')), ['{"a":1}']);
  t.same(sp.push(Buffer.from('2}\n\n{"c":3}\n')), ['{"b":2}', '{"c":3}']);
});

t.test('200 requests in a burst all settle with the right answers', async (t) => {
  const ipc = startIpc(t);
  await ipc.start();
  const names = ['pid', 'idle-active', 'volume', 'mpv-version'];
  const rs = await Promise.allSettled(Array.from({ length: 200 }, (_, i) => ipc.command(['get_property', names[i % 4]])));
  t.equal(rs.filter((r) => r.status === 'fulfilled').length, 200);
  t.equal((rs[0] as PromiseFulfilledResult<unknown>).value, ipc.pid);
  t.equal((rs[1] as PromiseFulfilledResult<unknown>).value, true);
  const bad = await ipc.command(['no-such-command']).catch((e: unknown) => e);
  t.ok(bad instanceof MpvCommandError, 'an mpv error rejects with MpvCommandError');
});

t.test('typed events of a played file, and property observation', async (t) => {
  const clip = await makeClip({ kind: 'pattern', seconds: 1 });
  const ipc = startIpc(t);
  await ipc.start();
  const seen: string[] = [];
  let ended: EndFileEvent | undefined;
  let entry: number | undefined;
  let hwdec: unknown;
  ipc.on('start-file', (e) => seen.push(`start-file:${e.playlistEntryId}`));
  ipc.on('file-loaded', () => seen.push('file-loaded'));
  ipc.on('playback-restart', () => seen.push('playback-restart'));
  ipc.on('property-change', (name, data) => {
    if (name === 'hwdec-current' && data !== undefined) hwdec = data;
  });
  const done = new Promise<void>((r) => ipc.on('end-file', (e) => ((ended = e), r())));
  await ipc.observe('hwdec-current');
  await ipc.command(['loadfile', clip, 'replace'], {
    onReply: (d) => (entry = (d as { playlist_entry_id: number }).playlist_entry_id),
  });
  await done;
  t.same(seen, [`start-file:${entry}`, 'file-loaded', 'playback-restart']);
  t.same(ended, { reason: 'eof', playlistEntryId: entry });
  t.equal(hwdec, 'no', 'hwdec-current observed (software decoding under --vo=null)');

  const failed = new Promise<EndFileEvent>((r) => ipc.on('end-file', r));
  await ipc.command(['loadfile', path.join(here, 'no-such-clip.mp4'), 'replace']);
  const f = await failed;
  t.equal(f.reason, 'error');
  t.type(f.fileError, 'string');
});

t.test('pending requests reject when mpv is killed, and exit is reported', async (t) => {
  const ipc = startIpc(t);
  await ipc.start();
  const pid = ipc.pid!;
  await freeze(pid); // mpv cannot answer now: requests stay pending
  const exit = new Promise<unknown>((r) => ipc.on('exit', r));
  const reqs = Array.from({ length: 20 }, () => ipc.command(['get_property', 'pid'], { timeoutMs: 60_000 }));
  process.kill(pid, 'SIGKILL');
  const rs = await Promise.allSettled(reqs);
  t.equal(rs.filter((r) => r.status === 'rejected').length, 20, 'every pending request rejected');
  t.match(await exit, { signal: 'SIGKILL' });
  await t.rejects(ipc.command(['get_property', 'pid']), /not running/);
});

t.test('a request with no answer times out', async (t) => {
  const ipc = startIpc(t);
  await ipc.start();
  t.teardown(() => ipc.kill());
  await freeze(ipc.pid!);
  await t.rejects(ipc.command(['get_property', 'pid'], { timeoutMs: 200 }), /no answer in 200 ms/);
});

t.test('a bad option: start() rejects with what mpv said', async (t) => {
  const ipc = startIpc(t, ['--no-such-option=1']);
  await t.rejects(ipc.start(), /mpv did not start/);
  const missing = new MpvIpc({ mpvPath: '/nonexistent/mpv', args: [], log: silentLogger() });
  await t.rejects(missing.start(), /ENOENT/);
});

t.test('no orphan: mpv exits when its parent is SIGKILLed', async (t) => {
  const tsImport = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));
  const child = spawn(process.execPath, [...tsImport, path.join(here, 'helpers', 'mpv-orphan-child.ts')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => child.kill('SIGKILL'));
  const pid = await new Promise<number>((resolve, reject) => {
    child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once('exit', (c) => reject(new Error(`child exited ${c}`)));
  });
  t.ok(alive(pid), 'mpv runs under the child');
  child.kill('SIGKILL');
  t.ok(await waitedFor('mpv gone', () => !alive(pid), 15_000), 'mpv is gone after its parent died');
});

t.test('stop() ends mpv', async (t) => {
  const ipc = startIpc(t);
  await ipc.start();
  const pid = ipc.pid!;
  await ipc.stop();
  t.ok(await waitedFor('mpv gone', () => !alive(pid), 15_000), 'mpv is gone');
  t.ok(ipc.exited);
});
