// The V8 flags `serve` runs with (fleet/cli/node-flags.ts): the bin's shebang carries them, the
// kernel's way of running it works here, and `serve` started without them says so and how to fix it.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { missingServeFlags, SERVE_NODE_FLAGS } from '../fleet/cli/node-flags.js';
import { FLEET_BIN, FleetProcess } from './helpers/fleet-rig.js';
import { tempDir } from './helpers/tmp.js';
import { waitFor } from './helpers/wait.js';

const root = path.resolve(path.dirname(FLEET_BIN), '../..');

t.test('missingServeFlags: found on the command line or in NODE_OPTIONS, else named', async (t) => {
  t.same(missingServeFlags([], ''), [...SERVE_NODE_FLAGS]);
  t.same(missingServeFlags([...SERVE_NODE_FLAGS], ''), []);
  t.same(missingServeFlags(['--enable-source-maps'], `--trace-warnings ${SERVE_NODE_FLAGS.join(' ')}`), []);
  t.same(missingServeFlags(['--max-semi-space-size=16'], '--max-semi-space-size=32'), [...SERVE_NODE_FLAGS], 'another size is not ours');
});

t.test('the bin runs with them: its shebang, run the way the kernel runs it', async (t) => {
  const shebang = `#!/usr/bin/env -S node ${SERVE_NODE_FLAGS.join(' ')}`;
  t.equal(readFileSync(path.join(root, 'fleet/main.ts'), 'utf8').split('\n')[0], shebang, 'source');
  t.equal(readFileSync(FLEET_BIN, 'utf8').split('\n')[0], shebang, 'dist (what npm links as signage-fleet)');
  // The kernel hands everything after the interpreter to it as one argument; env -S splits it.
  const [interp, arg] = [shebang.slice(2, shebang.indexOf(' ')), shebang.slice(shebang.indexOf(' ') + 1)];
  const r = spawnSync(interp, [arg, FLEET_BIN, '--version'], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /^\d+\.\d+\.\d+\n$/);
});

t.test('serve started without them warns once, naming the command to run; with them it does not', async (t) => {
  const dir = tempDir(t, 'fleet-flags-');
  // No broker: the ingest keeps retrying in the background, and serving starts regardless.
  const config = { db: path.join(dir, 'archive.db'), mqtt: { url: 'mqtt://127.0.0.1:9', clientId: 'flags-1' } };
  const warning = 'started without';
  for (const [name, flags] of [['bare', []], ['flagged', SERVE_NODE_FLAGS]] as const) {
    const p = new FleetProcess(dir, config, name, flags).register(t);
    p.start();
    await waitFor(`${name}: serving`, () => p.logged('signage-fleet serving'), 20_000);
    t.ok(p.logged('signage-fleet serving'), `${name}: serving`);
    const warned = p.lines.filter((l) => l.includes(warning));
    if (name === 'bare') {
      t.equal(warned.length, 1, 'bare: one warning');
      t.match(warned[0], `node ${SERVE_NODE_FLAGS.join(' ')} dist/fleet/main.js serve`, 'bare: the command to run');
      t.match(warned[0], '"level":40', 'bare: at warn level');
    } else {
      t.same(warned, [], 'flagged: no warning');
    }
    t.equal(await p.stop(), 0, `${name}: SIGTERM exits 0`);
  }
});
