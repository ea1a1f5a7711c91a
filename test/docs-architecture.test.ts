// docs/architecture.md against the code: its rules table names exactly the rule ids of
// test/helpers/import-rules.ts, its parts table has a row for every folder and top-level file of
// agent/, and the README links only docs pages that exist (and every one of them).
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { RULES } from './helpers/import-rules.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const page = readFileSync(path.join(repo, 'docs/architecture.md'), 'utf8');

/** The first cell of each row of the table under the `## heading` (header and separator rows left out). */
function firstCells(markdown: string, heading: string): string[] {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => l.trim() === `## ${heading}`);
  if (start < 0) return [];
  const cells: string[] = [];
  let inTable = false;
  for (const line of lines.slice(start + 1)) {
    if (/^#{1,2} /.test(line)) break;
    if (line.startsWith('|')) {
      inTable = true;
      cells.push(line.split('|')[1]!.trim());
    } else if (inTable) break;
  }
  // Drop the header row and the |---| separator.
  return cells.slice(2);
}

/** `name` from a cell that is exactly one code span (`` `name` ``), else undefined. */
const codeSpan = (cell: string): string | undefined => /^`([^`]+)`$/.exec(cell)?.[1];

t.test('the rules table names every rule id of import-rules.ts, and no other', async (t) => {
  const cells = firstCells(page, 'The rules');
  t.ok(cells.length > 0, 'docs/architecture.md has a table under "## The rules"');
  const onPage = cells.map((c) => codeSpan(c) ?? `(not a code span: ${c})`);
  const ids = RULES.map((r) => r.id);
  const missing = ids.filter((id) => !onPage.includes(id));
  const unknown = onPage.filter((id) => !ids.includes(id));
  const twice = onPage.filter((id, i) => onPage.indexOf(id) !== i);
  t.same(missing, [], 'every rule id has a row (add it to the table in docs/architecture.md)');
  t.same(unknown, [], 'every row names a rule that exists in test/helpers/import-rules.ts');
  t.same(twice, [], 'no rule has two rows');
  // The why is the rule's own: a reworded rule shows on the page too.
  for (const r of RULES) {
    const row = page.split('\n').find((l) => l.startsWith(`| \`${r.id}\` |`));
    if (row) t.ok(row.includes(r.why), `${r.id}: the row carries its why`);
  }
});

t.test('the parts table has a row for every folder and top-level file of agent/', async (t) => {
  const cells = firstCells(page, 'The parts');
  t.ok(cells.length > 0, 'docs/architecture.md has a table under "## The parts"');
  const named = new Set(cells.map((c) => codeSpan(c)).filter((n): n is string => n !== undefined));
  const entries = readdirSync(path.join(repo, 'agent'), { withFileTypes: true });
  const parts = entries
    .filter((e) => e.isDirectory() || e.name.endsWith('.ts'))
    .map((e) => (e.isDirectory() ? `${e.name}/` : e.name))
    .sort();
  t.ok(parts.includes('main.ts') && parts.includes('core/'), 'agent/ was read');
  const missing = parts.filter((p) => !named.has(p));
  t.same(missing, [], 'every part of agent/ has a row (document a new folder in docs/architecture.md)');
});

t.test('README links only docs pages that exist, and every one of them', async (t) => {
  const readme = readFileSync(path.join(repo, 'README.md'), 'utf8');
  const linked = new Set([...readme.matchAll(/\]\((docs\/[^)#\s]+\.md)(#[^)\s]*)?\)/g)].map((m) => m[1]!));
  t.ok(linked.size > 0, 'README links docs pages');
  const pages = readdirSync(path.join(repo, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`);
  const dangling = [...linked].filter((l) => !pages.includes(l)).sort();
  const orphans = pages.filter((p) => !linked.has(p)).sort();
  t.same(dangling, [], 'every docs page the README links exists');
  t.same(orphans, [], 'the README links every page in docs/');
});
