import path from 'node:path';
import t from 'tap';
import { ConfigError, DEFAULT_FILE_ROOTS, parseConfig } from '../agent/config/config.js';

// media.fileRoots, media.allowHosts and media.minFreeMB (issue 10 item 5): where media may come
// from, and what a download may not take of the disk.

t.test('defaults: media roots meant for media, no private host, a 256 MB floor; {dataDir} expanded', async (t) => {
  const c = parseConfig({ deviceId: 'm-1', mqtt: { url: 'mqtt://127.0.0.1' } }, '/etc/signage-agent/c.json', true);
  t.same(DEFAULT_FILE_ROOTS, ['/srv/signage', '/srv/house', '/media', '{dataDir}/media-in']);
  t.same(c.media, { cacheMaxMB: 2048, minFreeMB: 256, fileRoots: ['/srv/signage', '/srv/house', '/media', '/var/lib/signage-agent/media-in'], allowHosts: [] });
  const own = parseConfig({ deviceId: 'm-1', dataDir: 'data', mqtt: { url: 'mqtt://127.0.0.1' }, media: { fileRoots: ['{dataDir}/in', '/mnt/usb/../usb'], allowHosts: ['media.lan', '192.168.10.0/24', 'fd00::7'] } }, '/home/u/cfg/c.json');
  t.same(own.media.fileRoots, ['/home/u/cfg/data/in', '/mnt/usb'], 'normalised, relative to the dataDir');
  t.same(own.media.allowHosts, ['media.lan', '192.168.10.0/24', 'fd00::7']);
  t.equal(path.isAbsolute(own.media.fileRoots[0]!), true);
});

t.test('bad media keys are reported together with every other problem', async (t) => {
  let err: unknown;
  try {
    parseConfig({
      deviceId: 'm-1', heartbeatSec: 1, mqtt: { url: 'mqtt://127.0.0.1' },
      media: { minFreeMB: -1, fileRoots: ['relative/dir', '/ok'], allowHosts: ['ok.example', 'bad host', '10.0.0.0/33', 'http://x'] },
    }, '/tmp/c.json');
  } catch (e) {
    err = e;
  }
  t.ok(err instanceof ConfigError);
  const problems = (err as ConfigError).problems.join('\n');
  for (const key of ['heartbeatSec', 'media.minFreeMB', 'media.fileRoots.0', 'media.allowHosts.1', 'media.allowHosts.2', 'media.allowHosts.3']) t.match(problems, key, `${key} named`);
  t.notMatch(problems, 'media.fileRoots.1');
  t.notMatch(problems, 'media.allowHosts.0');
});
