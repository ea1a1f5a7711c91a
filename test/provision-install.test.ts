import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { tempDir } from './helpers/tmp.js';

const run = promisify(execFile);
const REPO = path.resolve(import.meta.dirname, '..');
const INSTALL = path.join(REPO, 'provisioning', 'install.sh');
const NODE = 'node-v20.99.0-linux-x64';
const UNIT_FILES = ['signage-agent.service', 'signage-agent-firstboot.service', 'signage-agent-update-gate.service', 'signage-agent-update-gate.timer'];

interface Inputs {
  dir: string;
  node: string;
  nodeSha: string;
  bundle: string;
  config: string;
  secret: string;
}

/** A stand-in Node tarball and an npm-pack-shaped bundle holding the real units. */
async function inputs(t: Test): Promise<Inputs> {
  const dir = tempDir(t, 'install-in-');
  const nodeBin = path.join(dir, 'src', NODE, 'bin');
  mkdirSync(nodeBin, { recursive: true });
  writeFileSync(path.join(nodeBin, 'node'), '#!/bin/sh\necho v20.99.0\n');
  chmodSync(path.join(nodeBin, 'node'), 0o755);
  const node = path.join(dir, `${NODE}.tar.xz`);
  await run('tar', ['-cJf', node, '-C', path.join(dir, 'src'), NODE]);
  const pkg = path.join(dir, 'pkg', 'package');
  mkdirSync(path.join(pkg, 'dist', 'agent'), { recursive: true });
  mkdirSync(path.join(pkg, 'systemd'));
  mkdirSync(path.join(pkg, 'provisioning'));
  copyFileSync(path.join(REPO, 'provisioning', 'update-gate.sh'), path.join(pkg, 'provisioning', 'update-gate.sh'));
  writeFileSync(path.join(pkg, 'package.json'), '{"name":"signage-agent","version":"0.1.0"}\n');
  writeFileSync(path.join(pkg, 'dist', 'agent', 'main.js'), 'console.log("agent")\n');
  for (const u of UNIT_FILES) copyFileSync(path.join(REPO, 'systemd', u), path.join(pkg, 'systemd', u));
  const bundle = path.join(dir, 'signage-agent-0.1.0.tgz');
  await run('tar', ['-czf', bundle, '-C', path.join(dir, 'pkg'), 'package']);
  const config = path.join(dir, 'signage-agent.json');
  writeFileSync(config, JSON.stringify({ deviceId: 'hn-hk-0001', mqtt: { url: 'mqtts://noc.example.vn:8883', passwordFile: 'mqtt.pass' } }));
  const secret = path.join(dir, 'mqtt.pass');
  writeFileSync(secret, 'pa55\n');
  return { dir, node, nodeSha: sha(readFileSync(node)), bundle, config, secret };
}

function sha(b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex');
}

/** path → type, mode, and content hash or link target: what "changes nothing" compares. */
function manifest(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const n of readdirSync(d).sort()) {
      const p = path.join(d, n);
      const st = lstatSync(p);
      const rel = path.relative(root, p);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out[rel] = `link ${readlinkSync(p)}`;
      else if (st.isDirectory()) {
        out[rel] = `dir ${mode}`;
        walk(p);
      } else out[rel] = `file ${mode} ${sha(readFileSync(p))}`;
    }
  };
  walk(root);
  return out;
}

async function install(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return run('bash', [INSTALL, ...args]).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

t.test('--dry-run --root installs every file with its mode and content; a second run changes nothing', async (t) => {
  const i = await inputs(t);
  const root = tempDir(t, 'install-root-');
  const args = ['--dry-run', '--root', root, '--arch', 'x64', '--bundle', i.bundle, '--node-tarball', i.node, '--node-sha256', i.nodeSha, '--config', i.config, '--secret', i.secret];
  const first = await install(args);
  t.equal(first.code, 0, first.stderr);
  const m = manifest(root);
  const opt = 'opt/signage-agent';
  const expect: Record<string, RegExp> = {
    [opt]: /^dir 755$/,
    [`${opt}/${NODE}/bin/node`]: /^file 755 /,
    [`${opt}/node`]: new RegExp(`^link ${NODE}$`),
    [`${opt}/releases`]: /^dir 755$/,
    [`${opt}/releases/0.1.0/package.json`]: /^file 644 /,
    [`${opt}/releases/0.1.0/dist/agent/main.js`]: /^file 644 /,
    [`${opt}/releases/current`]: /^link 0\.1\.0$/,
    [`${opt}/current`]: /^link releases\/current$/,
    [`${opt}/bin/signage-update-gate`]: /^file 755 /,
    [`${opt}/bin/signage-agent`]: /^file 755 /,
    [`${opt}/bin/signagectl`]: /^file 755 /,
    [`${opt}/bin/signage-firstboot`]: /^file 755 /,
    'usr/local/bin/signage-agent': /^link \/opt\/signage-agent\/bin\/signage-agent$/,
    'usr/local/bin/signagectl': /^link \/opt\/signage-agent\/bin\/signagectl$/,
    'etc/signage-agent': /^dir 750$/,
    'etc/signage-agent/signage-agent.json': /^file 640 /,
    'etc/signage-agent/mqtt.pass': /^file 600 /,
    'var/lib/signage-agent': /^dir 750$/,
    'etc/systemd/system/signage-agent.service': /^file 644 /,
    'etc/systemd/system/signage-agent-firstboot.service': /^file 644 /,
    'etc/systemd/system/signage-agent-update-gate.service': /^file 644 /,
    'etc/systemd/system/signage-agent-update-gate.timer': /^file 644 /,
    'etc/systemd/system/timers.target.wants/signage-agent-update-gate.timer': /^link \/etc\/systemd\/system\/signage-agent-update-gate\.timer$/,
    'etc/systemd/system/multi-user.target.wants/signage-agent.service': /^link \/etc\/systemd\/system\/signage-agent\.service$/,
    'etc/systemd/system/multi-user.target.wants/signage-agent-firstboot.service': /^link \/etc\/systemd\/system\/signage-agent-firstboot\.service$/,
    '.signage-install-plan': /^file 644 /,
  };
  for (const [p, re] of Object.entries(expect)) t.match(m[p] ?? '(missing)', re, p);

  const read = (p: string): string => readFileSync(path.join(root, p), 'utf8');
  t.equal(read('etc/signage-agent/signage-agent.json'), readFileSync(i.config, 'utf8'));
  t.equal(read('etc/signage-agent/mqtt.pass'), 'pa55\n');
  for (const u of UNIT_FILES) {
    t.equal(read(`etc/systemd/system/${u}`), readFileSync(path.join(REPO, 'systemd', u), 'utf8'), `${u} as in systemd/`);
  }
  t.match(read(`${opt}/bin/signage-agent`), /^exec \/opt\/signage-agent\/node\/bin\/node \/opt\/signage-agent\/current\/dist\/agent\/main\.js "\$@"$/m);
  t.match(read(`${opt}/bin/signagectl`), /current\/dist\/scripts\/signagectl\.js "\$@"/);
  t.match(read(`${opt}/bin/signage-firstboot`), /current\/dist\/scripts\/firstboot-import\.js "\$@"/);
  t.equal(read(`${opt}/bin/signage-update-gate`), readFileSync(path.join(REPO, 'provisioning', 'update-gate.sh'), 'utf8'), 'the gate, outside every release');
  const plan = read('.signage-install-plan');
  t.match(plan, /^useradd --system .*--shell \/usr\/sbin\/nologin .*signage$/m);
  t.match(plan, /^usermod --append --groups video,render,audio signage$/m);
  t.match(plan, /apt-get install .*mpv/);
  t.match(plan, /npm install --omit=dev/);
  t.match(plan, /^systemctl enable signage-agent\.service signage-agent-firstboot\.service signage-agent-update-gate\.timer$/m);
  t.match(plan, /^chown -R -h signage:signage \/opt\/signage-agent\/releases$/m, 'the agent owns the releases it updates');
  t.notOk(Object.keys(m).some((p) => p.includes('.install.') || p.includes('.node.') || p.includes('.app.') || p.includes('.tmp') || p.includes('.old-')), 'no temp leftovers');

  const second = await install(args);
  t.equal(second.code, 0, second.stderr);
  t.same(manifest(root), m, 'the second run changes nothing');
  t.match(second.stdout, /done, 0 change\(s\)/);
  t.notMatch(second.stdout, /^\+ /m);
});

t.test('finds the tarballs and the sha256 pin beside itself; refuses a tarball that does not match', async (t) => {
  const i = await inputs(t);
  const card = tempDir(t, 'install-card-');
  copyFileSync(INSTALL, path.join(card, 'install.sh'));
  copyFileSync(i.node, path.join(card, path.basename(i.node)));
  copyFileSync(i.bundle, path.join(card, path.basename(i.bundle)));
  writeFileSync(path.join(card, 'node.sha256'), `${'0'.repeat(64)}  node-v20.99.0-linux-arm64.tar.xz\n${i.nodeSha}  ${path.basename(i.node)}\n`);
  const root = tempDir(t, 'install-root-');
  const ok = await run('bash', [path.join(card, 'install.sh'), '--dry-run', '--root', root, '--arch', 'x64']);
  t.match(ok.stdout, /done, \d+ change/);
  t.ok(existsSync(path.join(root, 'opt/signage-agent', NODE, 'bin/node')));

  writeFileSync(path.join(card, 'node.sha256'), `${'f'.repeat(64)}  ${path.basename(i.node)}\n`);
  const root2 = tempDir(t, 'install-root-');
  const bad = await install(['--dry-run', '--root', root2, '--arch', 'x64', '--bundle', i.bundle, '--node-tarball', path.join(card, path.basename(i.node))]);
  t.not(bad.code, 0);
  t.match(bad.stderr, /sha256 [0-9a-f]{64} does not match the pinned f{64}; refusing it/);
  t.notOk(existsSync(path.join(root2, 'opt/signage-agent')), 'nothing installed');

  const noRoot = await install(['--dry-run']);
  t.not(noRoot.code, 0);
  t.match(noRoot.stderr, /--dry-run needs --root DIR/);
});
