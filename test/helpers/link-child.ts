// A link in its own process, so a test can SIGKILL (or SIGSTOP) it like a real power cut.
// argv: brokerUrl dataDir. Prints `connected <session>` once connected.
import { silentLogger } from '../../agent/core/log.js';
import { SqliteStore } from '../../agent/store/sqlite-store.js';
import { buildLink, makeConfig } from './link-rig.js';

const [url, dir] = process.argv.slice(2);
if (!url || !dir) throw new Error('usage: link-child URL DIR');
const store = new SqliteStore({ file: `${dir}/agent.db`, log: silentLogger() });
await store.start();
const { link } = buildLink(makeConfig(dir, url), store);
await link.start();
const poll = setInterval(() => {
  if (link.connected() && link.currentSession() > 0) {
    process.stdout.write(`connected ${link.currentSession()}\n`);
    clearInterval(poll);
  }
}, 10);
setInterval(() => undefined, 1 << 30);
