import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { silentLogger } from '../agent/core/log.js';
import { errorCard } from '../agent/provision/error-card.js';
import { importBootConfig, redact } from '../agent/provision/firstboot.js';
import { tempDir } from './helpers/tmp.js';

const run = promisify(execFile);
const mode = (f: string): number => statSync(f).mode & 0o777;
const PASSWORD = 's3cret-Pa55-xyz';
const KEY = '-----BEGIN PRIVATE KEY-----\nMIIsecretkeymaterial\n-----END PRIVATE KEY-----\n';

function layout(t: Parameters<typeof tempDir>[0]): { boot: string; emptyBoot: string; etc: string } {
  const root = tempDir(t, 'firstboot-');
  const boot = path.join(root, 'boot', 'firmware');
  const emptyBoot = path.join(root, 'boot-empty');
  mkdirSync(boot, { recursive: true });
  mkdirSync(emptyBoot);
  return { boot, emptyBoot, etc: path.join(root, 'etc', 'signage-agent') };
}

/** No byte of a secret may remain in any file on the boot partition. */
function assertNoSecrets(t: Test, dir: string): void {
  for (const n of readdirSync(dir)) {
    const text = readFileSync(path.join(dir, n), 'utf8');
    t.notOk(text.includes(PASSWORD), `${n} holds no password`);
    t.notOk(text.includes('MIIsecretkeymaterial'), `${n} holds no key`);
  }
}

t.test('a good file and its secrets are moved into /etc with the right modes', async (t) => {
  const { boot, emptyBoot, etc } = layout(t);
  const cfg = {
    deviceId: 'hn-hk-0001',
    mqtt: { url: 'mqtts://noc.example.vn:8883', username: 'hn-hk-0001', passwordFile: 'mqtt.pass', keyFile: path.join(etc, 'client.key') },
  };
  writeFileSync(path.join(boot, 'signage-agent.json'), JSON.stringify(cfg));
  writeFileSync(path.join(boot, 'signage-agent.mqtt.pass'), PASSWORD);
  writeFileSync(path.join(boot, 'signage-agent.client.key'), KEY);
  writeFileSync(path.join(boot, 'cmdline.txt'), 'console=tty1');
  const r = await importBootConfig({ bootDirs: [emptyBoot, boot], etcDir: etc, log: silentLogger() });
  t.equal(r.status, 'imported');
  t.equal(r.bootDir, boot, 'the first directory holding our files is used');
  t.same(JSON.parse(readFileSync(path.join(etc, 'signage-agent.json'), 'utf8')), cfg);
  t.equal(mode(path.join(etc, 'signage-agent.json')), 0o640);
  t.equal(readFileSync(path.join(etc, 'mqtt.pass'), 'utf8'), PASSWORD);
  t.equal(mode(path.join(etc, 'mqtt.pass')), 0o600);
  t.equal(readFileSync(path.join(etc, 'client.key'), 'utf8'), KEY);
  t.equal(mode(path.join(etc, 'client.key')), 0o600);
  t.same(readdirSync(boot), ['cmdline.txt'], 'originals deleted, nothing else touched');
  const again = await importBootConfig({ bootDirs: [emptyBoot, boot], etcDir: etc, log: silentLogger() });
  t.equal(again.status, 'nothing', 'the next boot finds nothing to do');
});

t.test('a bad file is rejected naming the key, shown on screen, and no secret stays on the boot partition', async (t) => {
  const { boot, etc } = layout(t);
  writeFileSync(
    path.join(boot, 'signage-agent.json'),
    JSON.stringify({ deviceId: 'hn-hk-0002', heartbeatSec: 1, mqtt: { url: 'http://noc.example.vn', password: PASSWORD, key: KEY, passwordFile: 'mqtt.pass' }, extra: [{ token: PASSWORD }] }),
  );
  writeFileSync(path.join(boot, 'signage-agent.client.key'), KEY);
  let shown: string[] = [];
  const r = await importBootConfig({
    bootDirs: [boot],
    etcDir: etc,
    log: silentLogger(),
    showError: async (lines) => {
      shown = lines;
    },
  });
  t.equal(r.status, 'rejected');
  if (r.status !== 'rejected') return;
  t.ok(r.problems.some((p) => p.startsWith('mqtt.url:')), 'names mqtt.url');
  t.ok(r.problems.some((p) => p.startsWith('heartbeatSec:')), 'names heartbeatSec');
  t.equal(r.previous, false);
  t.ok(shown.some((l) => l.startsWith('mqtt.url:')), 'the screen shows the key');
  t.same(readdirSync(boot).sort(), ['signage-agent-error.txt', 'signage-agent.json.rejected']);
  assertNoSecrets(t, boot);
  const rejected = JSON.parse(readFileSync(path.join(boot, 'signage-agent.json.rejected'), 'utf8')) as { mqtt: { url: string } };
  t.equal(rejected.mqtt.url, 'http://noc.example.vn', 'the rest is kept for the installer to fix');
  t.equal((rejected.mqtt as Record<string, unknown>).passwordFile, 'mqtt.pass', 'paths are not secrets');
  t.match(readFileSync(path.join(boot, 'signage-agent-error.txt'), 'utf8'), /mqtt\.url/);
  t.notOk(existsSync(path.join(etc, 'signage-agent.json')), 'nothing installed');
  t.equal(mode(path.join(etc, 'rejected', 'client.key')), 0o600, 'secrets kept aside, root only');
  t.equal(mode(path.join(etc, 'rejected')), 0o700);
});

t.test('a rejected file keeps the previous config; a missing password file is named', async (t) => {
  const { boot, etc } = layout(t);
  mkdirSync(etc, { recursive: true });
  writeFileSync(path.join(etc, 'signage-agent.json'), JSON.stringify({ deviceId: 'old-one', mqtt: { url: 'mqtt://a' } }));
  writeFileSync(path.join(boot, 'signage-agent.json'), JSON.stringify({ deviceId: 'new-one', mqtt: { url: 'mqtt://a', passwordFile: 'mqtt.pass' } }));
  const r = await importBootConfig({ bootDirs: [boot], etcDir: etc, log: silentLogger() });
  t.equal(r.status, 'rejected');
  if (r.status !== 'rejected') return;
  t.match(r.problems.join('\n'), /^mqtt\.passwordFile: .*mqtt\.pass does not exist \(drop signage-agent\.mqtt\.pass/m);
  t.equal(r.previous, true);
  t.match(readFileSync(path.join(etc, 'signage-agent.json'), 'utf8'), /old-one/);
});

t.test('not JSON: rejected, inline passwords blanked in the kept copy', async (t) => {
  const { boot, etc } = layout(t);
  writeFileSync(path.join(boot, 'signage-agent.json'), `{"deviceId":"x","mqtt":{"url":"mqtt://a","password":"${PASSWORD}","pem":"${KEY.replace(/\n/g, '\\n')}"},}`);
  const r = await importBootConfig({ bootDirs: [boot], etcDir: etc, log: silentLogger() });
  t.equal(r.status, 'rejected');
  if (r.status === 'rejected') t.match(r.problems[0], /not valid JSON/);
  assertNoSecrets(t, boot);
  t.equal(redact('{"mqtt":{"password":"a\\"b"}}').includes('a\\"b'), false);
});

t.test('the error card argv renders the text with mpv (headless, --vo=image)', async (t) => {
  const dir = tempDir(t, 'card-');
  const shots = path.join(dir, 'shots');
  const plain = path.join(dir, 'plain');
  mkdirSync(shots);
  mkdirSync(plain);
  const vo = (out: string): string[] => ['--vo=image', '--vo-image-format=png', `--vo-image-outdir=${out}`, '--frames=1'];
  const card = errorCard({ lines: ['signage-agent: configuration rejected', 'mqtt.url: must be an mqtt:// URL 100% wrong: a:b,c'], seconds: 2, workDir: path.join(dir, 'run'), playerArgs: vo(shots) });
  t.ok(card.argv.includes('--ao=null'), 'no audio device needed');
  await run(card.mpvPath, card.argv, { timeout: 20_000 });
  const blank = card.argv.map((a) => (a.startsWith('av://') ? a.replace(/,drawtext=.*$/, '') : a.startsWith('--vo-image-outdir') ? `--vo-image-outdir=${plain}` : a));
  await run(card.mpvPath, blank, { timeout: 20_000 });
  // Text drawn: the card's pixels against the same card without the drawtext filter. (The PNG
  // byte sizes, compared before, depend on the fonts installed: 1.99x with Noto added.)
  const gray = async (d: string): Promise<Buffer> => (await run('ffmpeg', ['-v', 'error', '-i', path.join(d, readdirSync(d)[0]!), '-f', 'rawvideo', '-pix_fmt', 'gray', 'pipe:1'], { encoding: 'buffer', maxBuffer: 64 << 20 })).stdout;
  const [withText, without] = [await gray(shots), await gray(plain)];
  t.equal(withText.length, without.length, 'same frame size');
  let changed = 0;
  for (let i = 0; i < withText.length; i++) if (Math.abs(withText[i]! - without[i]!) > 64) changed++;
  const share = changed / withText.length;
  t.ok(share > 0.002 && share < 0.5, `text drawn: ${(share * 100).toFixed(2)} % of the pixels differ from the blank card`);
  t.throws(() => errorCard({ lines: [], seconds: 1, workDir: '/tmp/a:b' }), /unsafe/);
  const osd = errorCard({ lines: ['cost: $5 ${path}'], seconds: 1, workDir: path.join(dir, 'run2'), playerArgs: ['--vo=null', '--frames=2'] });
  t.ok(osd.fallbackArgv.includes('--osd-msg1=$>cost: $5 ${path}'), 'OSD text with property expansion off');
  await run(osd.mpvPath, osd.fallbackArgv, { timeout: 20_000 });
  t.pass('the OSD fallback argv plays');
});
