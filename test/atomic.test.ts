import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { writeFileAtomic } from '../agent/fsx/atomic.js';
import { tempDir as sharedTempDir, type Teardown } from './helpers/tmp.js';

const tempDir = (t: Teardown): string => sharedTempDir(t, 'atomic-');

t.test('writes the content and leaves no temp file', async (t) => {
  const dir = tempDir(t);
  const f = path.join(dir, 'state.json');
  await writeFileAtomic(f, '{"a":1}');
  t.equal(readFileSync(f, 'utf8'), '{"a":1}');
  await writeFileAtomic(f, Buffer.from([1, 2, 3]));
  t.same([...readFileSync(f)], [1, 2, 3]);
  t.same(readdirSync(dir), ['state.json']);
});

t.test('applies the mode, also over an existing file with another mode', async (t) => {
  const dir = tempDir(t);
  const f = path.join(dir, 'secret');
  writeFileSync(f, 'old', { mode: 0o644 });
  await writeFileAtomic(f, 'new', 0o600);
  t.equal(statSync(f).mode & 0o777, 0o600);
  await writeFileAtomic(f, 'newer', 0o640);
  t.equal(statSync(f).mode & 0o777, 0o640);
  t.equal(readFileSync(f, 'utf8'), 'newer');
});

t.test('concurrent writers: the file is always one writer\'s complete content', async (t) => {
  const dir = tempDir(t);
  const f = path.join(dir, 'index.json');
  const payloads = Array.from({ length: 40 }, (_, i) => JSON.stringify({ writer: i, fill: String(i).repeat(20_000) }));
  await Promise.all(payloads.map((p) => writeFileAtomic(f, p)));
  const got = readFileSync(f, 'utf8');
  t.ok(payloads.includes(got), 'content equals one payload exactly');
  t.same(readdirSync(dir), ['index.json'], 'no temp files left');
});

t.test('a failed write leaves no temp and the old content', async (t) => {
  const dir = tempDir(t);
  const f = path.join(dir, 'x');
  writeFileSync(f, 'old');
  await t.rejects(writeFileAtomic(path.join(dir, 'missing-dir', 'x'), 'new'));
  t.equal(readFileSync(f, 'utf8'), 'old');
  t.same(readdirSync(dir), ['x']);
});
