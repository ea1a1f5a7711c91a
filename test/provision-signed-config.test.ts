import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { silentLogger } from '../agent/core/log.js';
import { rawPublicKeyOf } from '../agent/protocol/envelope.js';
import { importBootConfig, ISSUED_FILE } from '../agent/provision/firstboot.js';
import { main as signagectl } from '../scripts/signagectl/cli.js';
import { signFor, type Signer } from '../scripts/signagectl/sign.js';
import { tempDir } from './helpers/tmp.js';

// Issue 10 item 7: once a box's installed config has keys, a config dropped on its boot
// partition is taken only as a §9 envelope signed by one of them, for this box, issued after
// the signed config it took last. Otherwise it is rejected like any bad config.

const PASSWORD = 's3cret-Pa55-xyz';
const ID = 'hn-hk-0001';

function signer(id: string): Signer & { line: string } {
  const { privateKey } = generateKeyPairSync('ed25519');
  return { key: privateKey, keyId: id, line: `${id}:${rawPublicKeyOf(privateKey).toString('base64')}` };
}

const noc = signer('noc-1');
const root = signer('root-1');
const stranger = signer('noc-1');

function box(t: Parameters<typeof tempDir>[0], security?: Record<string, string[]>): { boot: string; etc: string } {
  const dir = tempDir(t, 'signed-config-');
  const boot = path.join(dir, 'boot');
  const etc = path.join(dir, 'etc');
  mkdirSync(boot);
  mkdirSync(etc);
  writeFileSync(path.join(etc, 'signage-agent.json'), JSON.stringify({ deviceId: ID, mqtt: { url: 'mqtts://old.example.vn' }, ...(security ? { security } : {}) }));
  return { boot, etc };
}

const next = { deviceId: ID, mqtt: { url: 'mqtts://new.example.vn:8883', passwordFile: 'mqtt.pass' }, security: { assignmentKeys: [noc.line] } };
const installed = (etc: string): any => JSON.parse(readFileSync(path.join(etc, 'signage-agent.json'), 'utf8'));
const drop = (boot: string, text: string): void => {
  writeFileSync(path.join(boot, 'signage-agent.json'), text);
  writeFileSync(path.join(boot, 'signage-agent.mqtt.pass'), PASSWORD);
};
const sealed = (s: Signer, target = `device/${ID}`, at = Date.now(), doc: Record<string, unknown> = next): string => signFor(doc, s, target, at).text;

t.test('a box with keys refuses a plain, unknown-key, tampered or other-screen config, like any bad config', async (t) => {
  const tampered = JSON.parse(sealed(noc)) as Record<string, string>;
  tampered.payload = Buffer.from(JSON.stringify({ ...next, target: `device/${ID}`, issuedAt: new Date().toISOString(), mqtt: { url: 'mqtts://evil.example' } })).toString('base64');
  const cases: [string, string, RegExp][] = [
    ['plain JSON', JSON.stringify(next), /plain JSON refused; this box has security keys .* must be signed/],
    ['not JSON', '{"deviceId":', /not a signed envelope/],
    ['signed by a key the box does not know', sealed(signer('other')), /unknown keyId "other"/],
    ['same id, other key', sealed(stranger), /bad signature for keyId "noc-1"/],
    ['payload swapped under the signature', JSON.stringify(tampered), /bad signature/],
    ['signed for another screen', sealed(noc, 'device/hn-hk-0002'), /signed for "device\/hn-hk-0002", this box is "device\/hn-hk-0001"/],
    ['signed for a group', sealed(noc, 'group/all'), /signed for "group\/all"/],
  ];
  for (const [name, text, reason] of cases) {
    const { boot, etc } = box(t, { assignmentKeys: [noc.line] });
    drop(boot, text);
    let shown: string[] = [];
    const r = await importBootConfig({ bootDirs: [boot], etcDir: etc, log: silentLogger(), showError: async (l) => { shown = l; } });
    t.equal(r.status, 'rejected', name);
    if (r.status !== 'rejected') continue;
    t.match(r.problems.join('\n'), reason, `${name}: the reason`);
    t.ok(shown.some((l) => reason.test(l)), `${name}: on the screen`);
    t.equal(installed(etc).mqtt.url, 'mqtts://old.example.vn', `${name}: the installed config stays`);
    t.same(readdirSync(boot).sort(), ['signage-agent-error.txt', 'signage-agent.json.rejected'], `${name}: the rejected-file path`);
    t.equal(readFileSync(path.join(etc, 'rejected', 'mqtt.pass'), 'utf8'), PASSWORD, `${name}: the secret moved aside`);
    t.match(readFileSync(path.join(boot, 'signage-agent-error.txt'), 'utf8'), reason);
  }
});

t.test('a config signed by a configured key for this box is installed (as plain JSON), and an older card is not taken again', async (t) => {
  const { boot, etc } = box(t, { assignmentKeys: [noc.line] });
  const first = Date.now() - 60_000;
  drop(boot, sealed(noc, `device/${ID}`, first));
  const r = await importBootConfig({ bootDirs: [boot], etcDir: etc, log: silentLogger() });
  t.equal(r.status, 'imported');
  t.same(installed(etc), next, 'the config itself: no target, no issuedAt, no envelope');
  t.equal(readFileSync(path.join(etc, ISSUED_FILE), 'utf8').trim(), new Date(first).toISOString());
  t.same(readdirSync(boot), [], 'nothing left on the boot partition');

  drop(boot, sealed(noc, `device/${ID}`, first, { ...next, mqtt: { url: 'mqtts://replayed.example' } }));
  const replay = await importBootConfig({ bootDirs: [boot], etcDir: etc, log: silentLogger() });
  t.equal(replay.status, 'rejected');
  if (replay.status === 'rejected') t.match(replay.problems[0], /is not after the installed signed config's/);
  t.equal(installed(etc).mqtt.url, 'mqtts://new.example.vn:8883');

  drop(boot, sealed(noc, `device/${ID}`, first + 1000, { ...next, heartbeatSec: 30 }));
  t.equal((await importBootConfig({ bootDirs: [boot], etcDir: etc, log: silentLogger() })).status, 'imported', 'a newer one is');
  t.equal(installed(etc).heartbeatSec, 30);
});

t.test('a root key may sign a card config; a box without keys takes plain JSON, and unwraps a signed one', async (t) => {
  const rooted = box(t, { rootKeys: [root.line] });
  drop(rooted.boot, sealed(root));
  t.equal((await importBootConfig({ bootDirs: [rooted.boot], etcDir: rooted.etc, log: silentLogger() })).status, 'imported', 'rootKeys only');
  drop(rooted.boot, sealed(noc));
  t.equal((await importBootConfig({ bootDirs: [rooted.boot], etcDir: rooted.etc, log: silentLogger() })).status, 'imported', 'then the new config\'s own keys count');

  const plain = box(t);
  drop(plain.boot, JSON.stringify(next));
  t.equal((await importBootConfig({ bootDirs: [plain.boot], etcDir: plain.etc, log: silentLogger() })).status, 'imported', 'plain JSON as before');
  const fresh = box(t);
  drop(fresh.boot, sealed(signer('whoever')));
  t.equal((await importBootConfig({ bootDirs: [fresh.boot], etcDir: fresh.etc, log: silentLogger() })).status, 'imported', 'a signed card on a box without keys');
  t.same(installed(fresh.etc), next, 'unwrapped');
  t.notOk(existsSync(path.join(fresh.etc, ISSUED_FILE)), 'nothing verified, so no order recorded');
});

t.test('signagectl sign-config --key signs a config the box takes', async (t) => {
  const { boot, etc } = box(t, { assignmentKeys: [noc.line] });
  const dir = tempDir(t, 'sign-config-');
  const keyFile = path.join(dir, 'noc-1.key');
  writeFileSync(keyFile, noc.key.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  const cfgFile = path.join(dir, 'cfg.json');
  writeFileSync(cfgFile, JSON.stringify(next));
  const err: string[] = [];
  const io = { out: (l: string): void => void err.push(l), err: (l: string): void => void err.push(l), isTTY: false };
  t.equal(await signagectl(['sign-config', '--config', cfgFile, '--key', keyFile, '--key-id', 'noc-1', '--out', path.join(boot, 'signage-agent.json')], io), 0, err.join('\n'));
  t.match(err.join('\n'), /signed by noc-1 for device\/hn-hk-0001/);
  writeFileSync(path.join(boot, 'signage-agent.mqtt.pass'), PASSWORD);
  t.equal((await importBootConfig({ bootDirs: [boot], etcDir: etc, log: silentLogger() })).status, 'imported');
  t.same(installed(etc), next);

  writeFileSync(cfgFile, JSON.stringify({ deviceId: ID, heartbeatSec: 1, mqtt: { url: 'mqtts://a' } }));
  t.equal(await signagectl(['sign-config', '--config', cfgFile, '--key', keyFile], io), 2, 'a bad config is not signed');
  t.match(err.join('\n'), /heartbeatSec/);
});
