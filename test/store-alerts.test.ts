import { execFileSync } from 'node:child_process';
import path from 'node:path';
import t from 'tap';
import { silentLogger } from '../agent/core/log.js';
import { migrations } from '../agent/store/migrations.js';
import { SqliteStore } from '../agent/store/sqlite-store.js';
import { tempDir } from './helpers/tmp.js';

// Migration 6 rebuilds the desired table to take alerts: what an existing box stored survives it.

t.test('a v5 store upgraded to v6 keeps its documents and then stores alerts', async (t) => {
  const file = path.join(tempDir(t, 'store-v5-'), 'agent.db');
  const v5 = migrations.filter((m) => m.version <= 5).map((m) => m.sql).join('\n');
  const doc = JSON.stringify({ version: 7, campaigns: [] });
  execFileSync('sqlite3', [file, `${v5}\nPRAGMA user_version = 5;\nINSERT INTO desired(kind, source, version, doc, applied_at) VALUES ('assignment', 'device', 7, '${doc}', 1), ('override', 'group/all', 3, NULL, 2);`]);
  const store = new SqliteStore({ file, log: silentLogger() });
  await store.start();
  t.teardown(() => store.stop());
  const before = await store.loadDesired();
  t.same(before, { assignments: [{ source: 'device', version: 7, doc: JSON.parse(doc), appliedAt: 1 }], overrides: [{ source: 'group/all', version: 3, doc: null, appliedAt: 2 }] }, 'rows kept, no alerts key while none was stored');
  const alert = { version: 9, id: 'flood', text: 'CẢNH BÁO', startsAt: '2026-12-06T18:00:00+07:00', expiresAt: '2026-12-06T19:00:00+07:00' };
  const r = await store.applyIfNewer('fleet', { kind: 'alert', doc: alert }, 10);
  t.equal(r.outcome, 'applied');
  t.same(r.state.alerts, [{ source: 'fleet', version: 9, doc: alert, appliedAt: 10 }]);
  const again = await store.applyIfNewer('fleet', { kind: 'alert', doc: { ...alert, version: 8 } }, 11);
  t.equal(again.outcome, 'unchanged', 'versions per topic, as assignments');
  const cleared = await store.applyIfNewer('fleet', { kind: 'alert', clear: true }, 12);
  t.equal(cleared.outcome, 'cleared');
  t.same(cleared.state.alerts, [{ source: 'fleet', version: 9, doc: null, appliedAt: 12 }], 'a clear keeps the version, so the old alert cannot come back');
  t.equal(Number(execFileSync('sqlite3', [file, 'PRAGMA user_version']).toString().trim()), 6);
});
