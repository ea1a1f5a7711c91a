import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { chmodSync, chownSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { errorCard, showErrorCard, type Spawn } from '../agent/provision/error-card.js';
import { tempDir } from './helpers/tmp.js';

// Issue 10 item 7: the first-boot one-shot runs as root, but the mpv that shows the red error
// card runs as the service user (setpriv with that user's groups), never as root.

const isRoot = process.getuid?.() === 0;
// As root the "service user" can be any id; otherwise chown only works to ourselves.
const SVC = isRoot ? { uid: 1234, gid: 1235 } : { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };

/** Records each spawn and exits with the codes given, in turn. */
function fakeSpawn(codes: number[]): { spawn: Spawn; calls: Array<{ command: string; args: string[] }> } {
  const calls: Array<{ command: string; args: string[] }> = [];
  const spawn: Spawn = (command, args) => {
    calls.push({ command, args });
    const child = Object.assign(new EventEmitter(), { kill: () => true });
    const code = codes.shift() ?? 0;
    setImmediate(() => child.emit('exit', code));
    return child as unknown as ChildProcess;
  };
  return { spawn, calls };
}

t.test('as root: mpv is spawned through setpriv as the service user with its groups; its text is its own', async (t) => {
  const dir = tempDir(t, 'card-as-user-');
  const card = errorCard({ lines: ['signage-agent: configuration rejected'], seconds: 2, workDir: path.join(dir, 'card'), mpvPath: '/usr/bin/mpv', runAs: SVC });
  const { spawn, calls } = fakeSpawn([1, 0]);
  t.equal(await showErrorCard(card, 2, spawn), 0);
  t.equal(calls.length, 2, 'drawtext failed at once: the OSD card is tried, also as the user');
  const prefix = ['--reuid=' + SVC.uid, '--regid=' + SVC.gid, '--init-groups', '--inh-caps=-all', '--', '/usr/bin/mpv'];
  t.same(calls[0], { command: 'setpriv', args: [...prefix, ...card.argv] });
  t.same(calls[1], { command: 'setpriv', args: [...prefix, ...card.fallbackArgv] });
  for (const f of [path.join(dir, 'card'), card.textFile]) {
    const st = statSync(f);
    t.same([st.uid, st.gid], [SVC.uid, SVC.gid], `${path.basename(f)} belongs to the service user`);
    t.equal(st.mode & 0o077, 0, `${path.basename(f)} is private to it`);
  }
});

t.test('not root (no runAs): mpv is spawned as before, argv unchanged', async (t) => {
  const dir = tempDir(t, 'card-plain-');
  const card = errorCard({ lines: ['x'], seconds: 1, workDir: path.join(dir, 'card'), mpvPath: '/usr/bin/mpv' });
  const { spawn, calls } = fakeSpawn([0]);
  t.equal(await showErrorCard(card, 1, spawn), 0);
  t.same(calls, [{ command: '/usr/bin/mpv', args: card.argv }]);
  t.equal(card.argv[0], '--no-config');
});

t.test('for real, as root: the card is drawn by an mpv running as nobody', { skip: isRoot ? false : 'needs root to switch users' }, async (t) => {
  const NOBODY = { uid: 65534, gid: 65534 };
  const dir = tempDir(t, 'card-nobody-');
  const shots = path.join(dir, 'shots');
  mkdirSync(shots);
  chownSync(shots, NOBODY.uid, NOBODY.gid);
  // mpv as nobody must reach its folders: the temp dir is the test's, so let it traverse (as the unit's 0711 run dir does).
  chmodSync(dir, 0o711);
  const card = errorCard({
    lines: ['signage-agent: configuration rejected'],
    seconds: 1,
    workDir: path.join(dir, 'card'),
    runAs: NOBODY,
    playerArgs: ['--vo=image', '--vo-image-format=png', `--vo-image-outdir=${shots}`, '--frames=1'],
  });
  t.equal(await showErrorCard(card, 1), 0, 'mpv ran');
  const files = readdirSync(shots);
  t.ok(files.length >= 1, 'a frame was written');
  t.equal(statSync(path.join(shots, files[0]!)).uid, NOBODY.uid, 'by a process running as nobody');
});
