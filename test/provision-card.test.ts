import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { silentLogger } from '../agent/core/log.js';
import { importBootConfig } from '../agent/provision/firstboot.js';
import { fatPartitionOffset } from '../scripts/prepare-card/boot-target.js';
import { parseCsv } from '../scripts/prepare-card/card.js';
import { prepareCardCli } from '../scripts/prepare-card/cli.js';
import { tempDir } from './helpers/tmp.js';

const run = promisify(execFile);
const MENV = { ...process.env, MTOOLS_SKIP_CHECK: '1' };
const CMDLINE = 'console=serial0,115200 console=tty1 root=PARTUUID=4f772ec3-02 rootfstype=ext4 fsck.repair=yes rootwait quiet';
const HOOK = 'systemd.run=/boot/firmware/signage/firstrun.sh systemd.run_success_action=reboot systemd.unit=kernel-command-line.target';

interface Kit {
  dir: string;
  common: string[];
  bundle: string;
  config: string;
  pass: string;
}

function kit(t: Test): Kit {
  const dir = tempDir(t, 'card-');
  const bundle = path.join(dir, 'signage-agent-0.1.0.tgz');
  writeFileSync(bundle, Buffer.from('a stand-in for the npm pack bundle'));
  const node = path.join(dir, 'node-v20.99.0-linux-arm64.tar.xz');
  writeFileSync(node, Buffer.from('a stand-in for the Node tarball'));
  writeFileSync(path.join(dir, 'node.sha256'), `${createHash('sha256').update(readFileSync(node)).digest('hex')}  ${path.basename(node)}\n`);
  const config = path.join(dir, 'signage-agent.json');
  writeFileSync(config, JSON.stringify({ deviceId: 'hn-hk-0001', groups: ['all', 'hoan-kiem'], mqtt: { url: 'mqtts://noc.example.vn:8883', username: 'hn-hk-0001', passwordFile: 'mqtt.pass' } }));
  const pass = path.join(dir, 'pass.txt');
  writeFileSync(pass, 'pa55\n');
  return { dir, common: ['--bundle', bundle, '--node-tarball', node], bundle, config, pass };
}

/** A kit and a plain boot folder holding only cmdline.txt. */
function kitWithBoot(t: Test): { k: Kit; boot: string } {
  const k = kit(t);
  const boot = path.join(k.dir, 'bootfs');
  mkdirSync(boot);
  writeFileSync(path.join(boot, 'cmdline.txt'), CMDLINE + '\n');
  return { k, boot };
}

/** A 48 MB disk image with an MBR and a FAT boot partition at 1 MiB holding cmdline.txt. */
async function baseImage(t: Test, dir: string, cmdline = CMDLINE, extra: Record<string, string> = {}): Promise<string> {
  const img = path.join(dir, 'base.img');
  await run('truncate', ['-s', '48M', img]);
  await new Promise<void>((resolve, reject) => {
    const c = execFile('sfdisk', ['-q', img], (e) => (e ? reject(e) : resolve()));
    c.stdin!.end('start=2048, size=65536, type=c\n');
  });
  await run('mkfs.vfat', ['--offset', '2048', '-n', 'bootfs', img, '32768']);
  const files = { 'cmdline.txt': cmdline + '\n', 'config.txt': 'dtoverlay=vc4-kms-v3d\n', ...extra };
  for (const [n, content] of Object.entries(files)) {
    const f = path.join(dir, n);
    writeFileSync(f, content);
    await run('mcopy', ['-i', `${img}@@1048576`, f, `::/${n}`], { env: MENV });
  }
  t.ok(true, 'base image built');
  return img;
}

async function mtype(img: string, file: string): Promise<string> {
  return (await run('mtype', ['-i', `${img}@@1048576`, `::${file}`], { env: MENV })).stdout;
}
async function mdir(img: string, dir: string): Promise<string[]> {
  const out = (await run('mdir', ['-b', '-i', `${img}@@1048576`, `::${dir}`], { env: MENV })).stdout;
  return out.split('\n').map((l) => l.trim().replace(/^::\//, '').replace(new RegExp(`^${dir.slice(1)}/`), '')).filter(Boolean).sort();
}

async function prep(argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await prepareCardCli(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

t.test('an image file: config, secrets, bundle and hook written into its FAT partition, readable with mtools', async (t) => {
  const k = kit(t);
  const base = await baseImage(t, k.dir);
  t.equal(await fatPartitionOffset(base), 1048576);
  const out = path.join(k.dir, 'hn-hk-0001.img');
  const r = await prep(['--image', base, '--out', out, '--config', k.config, '--mqtt-pass', k.pass, ...k.common]);
  t.equal(r.code, 0, r.err.join('\n'));
  t.same(JSON.parse(await mtype(out, '/signage-agent.json')), JSON.parse(readFileSync(k.config, 'utf8')));
  t.equal(await mtype(out, '/signage-agent.mqtt.pass'), 'pa55\n');
  t.same(await mdir(out, '/signage'), ['firstrun.sh', 'install.sh', 'node-v20.99.0-linux-arm64.tar.xz', 'node.sha256', 'setup.sh', 'signage-agent-0.1.0.tgz', 'signage-install.service']);
  t.equal(await mtype(out, '/signage/signage-agent-0.1.0.tgz'), readFileSync(k.bundle, 'utf8'));
  t.equal(await mtype(out, '/signage/install.sh'), readFileSync(path.join(import.meta.dirname, '..', 'provisioning', 'install.sh'), 'utf8'));
  t.equal(await mtype(out, '/cmdline.txt'), `${CMDLINE} ${HOOK}\n`, 'one line, hook appended');
  t.equal(await mtype(out, '/config.txt'), 'dtoverlay=vc4-kms-v3d\n', 'the rest untouched');
  t.equal(await mtype(base, '/cmdline.txt'), CMDLINE + '\n', 'the base image is not modified with --out');

  const again = await prep(['--image', out, '--config', k.config, '--mqtt-pass', k.pass, ...k.common]);
  t.equal(again.code, 0, again.err.join('\n'));
  t.equal(await mtype(out, '/cmdline.txt'), `${CMDLINE} ${HOOK}\n`, 'preparing twice adds no second hook');
});

t.test("a boot folder; Imager's firstrun.sh is chained, not lost", async (t) => {
  const k = kit(t);
  const boot = path.join(k.dir, 'bootfs');
  mkdirSync(boot);
  writeFileSync(path.join(boot, 'cmdline.txt'), `${CMDLINE} systemd.run=/boot/firstrun.sh systemd.run_success_action=reboot systemd.unit=kernel-command-line.target\n`);
  writeFileSync(path.join(boot, 'firstrun.sh'), '#!/bin/bash\necho imager\n');
  const r = await prep(['--boot', boot, '--config', k.config, '--mqtt-pass', k.pass, ...k.common]);
  t.equal(r.code, 0, r.err.join('\n'));
  t.equal(readFileSync(path.join(boot, 'cmdline.txt'), 'utf8'), `${CMDLINE} ${HOOK}\n`);
  t.equal(readFileSync(path.join(boot, 'signage', 'imager-firstrun.sh'), 'utf8'), '#!/bin/bash\necho imager\n');
  t.notOk(existsSync(path.join(boot, 'firstrun.sh')));
  t.ok(existsSync(path.join(boot, 'signage-agent.json')));
  await run('bash', ['-n', path.join(boot, 'signage', 'setup.sh')]);

  // The first boot: run the hook against a stand-in root.
  const root = path.join(k.dir, 'rootfs');
  const marker = path.join(k.dir, 'imager-ran');
  writeFileSync(path.join(boot, 'signage', 'imager-firstrun.sh'), `#!/bin/bash\ntouch ${marker}\n`);
  await run('bash', [path.join(boot, 'signage', 'firstrun.sh')], { env: { ...process.env, SIGNAGE_FIRSTRUN_ROOT: root } });
  t.ok(existsSync(marker), "Imager's customisation ran first");
  t.notOk(existsSync(path.join(boot, 'signage', 'imager-firstrun.sh')));
  t.equal(readFileSync(path.join(boot, 'cmdline.txt'), 'utf8'), CMDLINE + '\n', 'the hook removed itself from cmdline.txt');
  const unit = path.join(root, 'etc/systemd/system/signage-install.service');
  t.match(readFileSync(unit, 'utf8'), new RegExp(`^ExecStart=/bin/bash ${path.join(boot, 'signage', 'setup.sh')}$`, 'm'));
  t.equal(readlinkSync(path.join(root, 'etc/systemd/system/multi-user.target.wants/signage-install.service')), '/etc/systemd/system/signage-install.service');
  const verify = await run('systemd-analyze', ['verify', unit]).then((r) => r.stderr, (e: { stderr: string }) => `failed: ${e.stderr}`);
  t.equal(verify.split('\n').filter((l) => l.includes('signage-install')).join('\n'), '', 'systemd-analyze verify passes on the armed unit');
});

t.test('bad config or a wrong Node checksum: nothing prepared, the key named', async (t) => {
  const { k, boot } = kitWithBoot(t);
  const bad = path.join(k.dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ deviceId: 'bad id!', mqtt: { url: 'mqtt://x' } }));
  const r = await prep(['--boot', boot, '--config', bad, ...k.common]);
  t.equal(r.code, 1);
  t.match(r.err.join('\n'), /deviceId: must match/);
  t.same(readdirSync(boot), ['cmdline.txt']);
  const sha = await prep(['--boot', boot, '--config', k.config, ...k.common, '--node-sha256', 'f'.repeat(64)]);
  t.equal(sha.code, 1);
  t.match(sha.err.join('\n'), /does not match the pinned/);
  t.same(readdirSync(boot), ['cmdline.txt']);
  const renamed = path.join(k.dir, 'node.tar.xz');
  writeFileSync(renamed, 'x');
  const badName = await prep(['--boot', boot, '--config', k.config, '--bundle', k.bundle, '--node-tarball', renamed, '--node-sha256', 'a'.repeat(64)]);
  t.equal(badName.code, 1);
  t.match(badName.err.join('\n'), /expected an official Node tarball name/);
  const noBoot = await prep(['--config', k.config, ...k.common]);
  t.equal(noBoot.code, 2);
});

t.test('a CSV of screens: one image per row, per-device fields and secrets', async (t) => {
  const k = kit(t);
  const base = await baseImage(t, k.dir);
  const template = path.join(k.dir, 'template.json');
  writeFileSync(template, JSON.stringify({ deviceId: 'x', timezone: 'Asia/Ho_Chi_Minh', mqtt: { url: 'mqtts://noc.example.vn:8883', passwordFile: 'mqtt.pass' } }));
  mkdirSync(path.join(k.dir, 'secrets'));
  writeFileSync(path.join(k.dir, 'secrets', 'a.pass'), 'pass-a\n');
  writeFileSync(path.join(k.dir, 'secrets', 'b.pass'), 'pass-b\n');
  const csv = path.join(k.dir, 'devices.csv');
  writeFileSync(
    csv,
    [
      'deviceId,groups,mqtt.username,heartbeatSec,secret:signage-agent.mqtt.pass',
      'hn-hk-0001,all;hoan-kiem,hn-hk-0001,30,secrets/a.pass',
      '"hn-hk-0002","all;ba-dinh",hn-hk-0002,,secrets/b.pass',
      'bad id,all,x,1,secrets/a.pass',
    ].join('\r\n') + '\r\n',
  );
  const outDir = path.join(k.dir, 'out');
  mkdirSync(outDir);
  const r = await prep(['--image', base, '--csv', csv, '--template', template, '--out-dir', outDir, ...k.common]);
  t.equal(r.code, 1, 'one bad row fails the run');
  t.match(r.err.join('\n'), /deviceId: must match/);
  t.match(r.out.at(-1), /2 of 3 card image\(s\) prepared/);
  t.same(readdirSync(outDir).sort(), ['hn-hk-0001.img', 'hn-hk-0002.img']);
  const one = JSON.parse(await mtype(path.join(outDir, 'hn-hk-0001.img'), '/signage-agent.json')) as Record<string, unknown>;
  t.same(one, { deviceId: 'hn-hk-0001', timezone: 'Asia/Ho_Chi_Minh', groups: ['all', 'hoan-kiem'], heartbeatSec: 30, mqtt: { url: 'mqtts://noc.example.vn:8883', passwordFile: 'mqtt.pass', username: 'hn-hk-0001' } });
  const two = JSON.parse(await mtype(path.join(outDir, 'hn-hk-0002.img'), '/signage-agent.json')) as { groups: string[] };
  t.same(two.groups, ['all', 'ba-dinh']);
  t.equal(await mtype(path.join(outDir, 'hn-hk-0002.img'), '/signage-agent.mqtt.pass'), 'pass-b\n');
  t.same(parseCsv('a,"b,""c"""\n1,2'), [['a', 'b,"c"'], ['1', '2']]);
});

t.test('--sign-key: the card\'s config is a signed envelope that a box with that key takes', async (t) => {
  const { k, boot } = kitWithBoot(t);
  const keys = path.join(k.dir, 'keys');
  const gen = await run('node', ['--import=@tapjs/typescript/import', path.resolve(import.meta.dirname, '../scripts/signagectl.ts'), 'keygen', '--out', keys, '--id', 'noc-1'], { cwd: path.resolve(import.meta.dirname, '..') });
  const line = gen.stdout.trim();
  t.equal((await prep(['--boot', boot, '--config', k.config, '--sign-key-id', 'noc-1', ...k.common])).code, 2, '--sign-key-id alone is a usage error');
  const r = await prep(['--boot', boot, '--config', k.config, '--mqtt-pass', k.pass, '--sign-key', path.join(keys, 'noc-1.key'), ...k.common]);
  t.equal(r.code, 0, r.err.join('\n'));
  const env = JSON.parse(readFileSync(path.join(boot, 'signage-agent.json'), 'utf8')) as { payload: string; keyId: string };
  t.equal(env.keyId, 'noc-1');
  t.match(JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8')), { deviceId: 'hn-hk-0001', target: 'device/hn-hk-0001', issuedAt: String });
  // The screen's next boot: its installed config has the key.
  const etc = path.join(k.dir, 'etc');
  mkdirSync(etc);
  writeFileSync(path.join(etc, 'signage-agent.json'), JSON.stringify({ deviceId: 'hn-hk-0001', mqtt: { url: 'mqtts://a' }, security: { assignmentKeys: [line] } }));
  const imported = await importBootConfig({ bootDirs: [boot], etcDir: etc, log: silentLogger() });
  t.equal(imported.status, 'imported', JSON.stringify(imported));
  t.same(JSON.parse(readFileSync(path.join(etc, 'signage-agent.json'), 'utf8')), JSON.parse(readFileSync(k.config, 'utf8')));
});
