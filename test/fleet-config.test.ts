// fleet.json (every problem at once, exit 2 from the command line) and the pure seq-gap arithmetic.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import fc from 'fast-check';
import t from 'tap';
import { applySeqs, missingCount } from '../fleet/archive/seq.js';
import { FleetConfigError, parseFleetConfig } from '../fleet/config.js';
import { FLEET_BIN } from './helpers/fleet-rig.js';
import { tempDir } from './helpers/tmp.js';

const run = promisify(execFile);

t.test('config: defaults, paths from the config folder, every problem at once', async (t) => {
  const c = parseFleetConfig({ db: 'archive.db', mqtt: { url: 'mqtt://127.0.0.1:1883', clientId: 'ingest-1' } }, '/etc/fleet');
  t.equal(c.db, '/etc/fleet/archive.db');
  t.match(c.mqtt, { topicPrefix: 'signage', shareGroup: 'signage-fleet', sessionExpirySec: 604800, receiveMaximum: 2000 });
  t.same(c.batch, { maxRows: 1000, maxDelayMs: 50 });
  t.same(c.groups, {});
  const e = (() => { try { parseFleetConfig({ mqtt: { url: 'http://x', clientId: 'bad id' }, groups: { g: ['ok', '../no'] }, extra: 1 }, '/'); } catch (err) { return err; } })();
  t.ok(e instanceof FleetConfigError);
  const problems = (e as FleetConfigError).problems.join('\n');
  for (const k of ['db', 'mqtt.url', 'mqtt.clientId', 'groups.g.1', '(top)']) t.match(problems, k, `names ${k}`);
});

t.test('serve with a bad config: exit 2, one stderr line naming every problem; --help exits 0', async (t) => {
  const dir = tempDir(t, 'fleet-cfg-');
  const file = path.join(dir, 'fleet.json');
  writeFileSync(file, JSON.stringify({ db: 'a.db', mqtt: { url: 'nope' } }));
  const r = await run(process.execPath, [FLEET_BIN, 'serve', '--config', file]).catch((e: { code: number; stderr: string }) => e);
  t.equal((r as { code: number }).code, 2);
  const err = (r as { stderr: string }).stderr;
  t.equal(err.trim().split('\n').length, 1, 'one line');
  t.match(err, 'mqtt.url');
  t.match(err, 'mqtt.clientId');
  const help = await run(process.execPath, [FLEET_BIN, '--help']);
  t.match(help.stdout, 'signage-fleet serve --config');
});

t.test('seq gaps: what is missing is [1, max] minus what arrived, in any order of arrival', async (t) => {
  t.same(applySeqs({ maxSeq: 0, gaps: [] }, [1, 2, 3, 7, 8]), { maxSeq: 8, gaps: [{ lo: 4, hi: 6 }] });
  t.same(applySeqs({ maxSeq: 8, gaps: [{ lo: 4, hi: 6 }] }, [5]), { maxSeq: 8, gaps: [{ lo: 4, hi: 4 }, { lo: 6, hi: 6 }] });
  t.same(applySeqs({ maxSeq: 0, gaps: [] }, [3]), { maxSeq: 3, gaps: [{ lo: 1, hi: 2 }] }, 'a store first seen at seq 3: 1-2 missing');
  fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: 60 }), { maxLength: 60 }), fc.integer({ min: 1, max: 5 }), (seqs, parts) => {
    const uniq = [...new Set(seqs)];
    // Fed in `parts` batches, in the given (random) order.
    let st = { maxSeq: 0, gaps: [] as { lo: number; hi: number }[] };
    const size = Math.ceil(uniq.length / parts) || 1;
    for (let i = 0; i < uniq.length; i += size) st = applySeqs(st, uniq.slice(i, i + size));
    const max = uniq.length ? Math.max(...uniq) : 0;
    const missing = Array.from({ length: max }, (_, i) => i + 1).filter((s) => !uniq.includes(s));
    const fromGaps = st.gaps.flatMap((g) => Array.from({ length: g.hi - g.lo + 1 }, (_, i) => g.lo + i));
    return st.maxSeq === max && JSON.stringify(fromGaps) === JSON.stringify(missing) && missingCount(st.gaps) === missing.length;
  }));
  t.pass('property holds');
});
