// Reads the imports of a tree with the TypeScript compiler API and checks them against rules
// (the rules themselves, as data, are in import-rules.ts; docs/architecture.md explains them).
// size: the reader and the checker share one SourceInfo shape and are read together; split by rule kind if it grows.
import { builtinModules } from 'node:module';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/**
 * Patterns name files by their path from the tree's root (`agent/link/**`, `agent/main.ts`) and
 * packages by their import name (`sqlite3`, `node:fs`: a name also covers its subpaths, so
 * `node:fs` covers `node:fs/promises`; a builtin is always spelt `node:` here, however the source
 * spells it). `*` is one path segment's worth of characters, `**` anything.
 */
export type Pattern = string;

export type Rule =
  /**
   * Files in `from` (except `unless`) import nothing that matches `to`. With `reach`, only what
   * runs counts (not `import type`), but through everything it loads in the tree: a pure module
   * may name a logger's type, never load a module that opens a file.
   */
  | { kind: 'forbid'; id: string; why: string; from: Pattern[]; to: Pattern[]; unless?: Pattern[]; reach?: boolean }
  /**
   * Files in `from` import only what matches `from` or `allow`. A `!pattern` in allow narrows the
   * rule to what it names: then only imports matching a `!pattern` are checked. Files in `unless`
   * are outside the rule (a named exception, with its own rule saying what holds there instead).
   */
  | { kind: 'only'; id: string; why: string; from: Pattern[]; allow: Pattern[]; unless?: Pattern[] }
  /** Only files in `allowIn` use these members of the global `process` (or import node:process). */
  | { kind: 'process'; id: string; why: string; scope: Pattern[]; allowIn: Pattern[]; members: string[] }
  /** No import cycle between files (`file`) or between first-level folders under `root` (`folder`). */
  | { kind: 'cycle'; id: string; why: string; level: 'file' | 'folder'; scope: Pattern[]; root?: string }
  /** Files over maxLines carry `marker` and a reason in their first comment lines. */
  | { kind: 'size'; id: string; why: string; scope: Pattern[]; maxLines: number; marker: string };

/**
 * A violation known and accepted for now, matched by rule id and key (see Violation.key). Each
 * one names who removes it; an exception that no longer matches a violation fails the test, so
 * the list only shrinks.
 */
export interface KnownException {
  rule: string;
  key: string;
  until: string;
}

export interface Violation {
  rule: string;
  /** Stable and exact: `from -> to` for imports and cycle edges, `file: process.member`, `file`. */
  key: string;
  message: string;
}

export interface ImportRef {
  /** As written in the source. */
  spec: string;
  /** A repository path (`agent/core/types.ts`) for a relative import, else the package name. */
  target: string;
  line: number;
  /** `import type`, `export type`, `import('x').T`: gone after compilation. */
  typeOnly: boolean;
}

export interface SourceInfo {
  file: string;
  lines: number;
  imports: ImportRef[];
  processUses: { member: string; line: number }[];
  /** The leading comment lines, before the first statement. */
  head: string[];
}

const BUILTINS = new Set(builtinModules.filter((m) => !m.startsWith('_')));

export function normaliseModule(spec: string): string {
  const bare = spec.startsWith('node:') ? spec.slice(5) : spec;
  const top = bare.split('/')[0] ?? bare;
  return BUILTINS.has(top) ? `node:${bare}` : spec;
}

function globToRegExp(p: string): RegExp {
  let re = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '*' && p[i + 1] === '*') { re += '.*'; i++; } else if (c === '*') re += '[^/]*';
    else re += c.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** `node:fs` matches `node:fs/promises`; `agent/x/**` matches below agent/x. */
export function matches(pattern: Pattern, name: string): boolean {
  if (globToRegExp(pattern).test(name)) return true;
  return !pattern.includes('*') && name.startsWith(pattern + '/');
}

const anyMatch = (ps: Pattern[], name: string): boolean => ps.some((p) => matches(p, name));

function importIsTypeOnly(n: ts.ImportDeclaration): boolean {
  const c = n.importClause;
  if (!c) return false; // import 'x': loaded for its effect
  if (c.isTypeOnly) return true;
  if (c.name) return false;
  const b = c.namedBindings;
  return !!b && ts.isNamedImports(b) && b.elements.length > 0 && b.elements.every((e) => e.isTypeOnly);
}

function exportIsTypeOnly(n: ts.ExportDeclaration): boolean {
  const c = n.exportClause;
  return !!c && ts.isNamedExports(c) && c.elements.length > 0 && c.elements.every((e) => e.isTypeOnly);
}

export function parseSource(root: string, file: string): SourceInfo {
  const text = readFileSync(path.join(root, file), 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const imports: ImportRef[] = [];
  const processUses: { member: string; line: number }[] = [];
  const lineOf = (n: ts.Node): number => sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1;
  const addImport = (lit: ts.Expression, at: ts.Node, typeOnly = false): void => {
    if (!ts.isStringLiteralLike(lit)) return;
    const spec = lit.text;
    let target: string;
    if (spec.startsWith('.')) {
      const joined = path.posix.normalize(path.posix.join(path.posix.dirname(file), spec));
      target = joined.replace(/\.js$/, '.ts');
      if (!target.endsWith('.ts') && existsSync(path.join(root, target + '.ts'))) target += '.ts';
    } else target = normaliseModule(spec);
    imports.push({ spec, target, line: lineOf(at), typeOnly });
  };
  const visit = (n: ts.Node): void => {
    if (ts.isImportDeclaration(n)) addImport(n.moduleSpecifier, n, importIsTypeOnly(n));
    else if (ts.isExportDeclaration(n) && n.moduleSpecifier) addImport(n.moduleSpecifier, n, n.isTypeOnly || exportIsTypeOnly(n));
    else if (ts.isImportEqualsDeclaration(n) && ts.isExternalModuleReference(n.moduleReference)) addImport(n.moduleReference.expression, n);
    else if (ts.isCallExpression(n) && n.arguments[0] && (n.expression.kind === ts.SyntaxKind.ImportKeyword
      || (ts.isIdentifier(n.expression) && n.expression.text === 'require'))) addImport(n.arguments[0], n);
    else if (ts.isImportTypeNode(n) && ts.isLiteralTypeNode(n.argument)) addImport(n.argument.literal as ts.Expression, n, true);
    if (ts.isPropertyAccessExpression(n) || ts.isElementAccessExpression(n)) {
      const obj = n.expression;
      const isProcess = (ts.isIdentifier(obj) && obj.text === 'process')
        || (ts.isPropertyAccessExpression(obj) && ts.isIdentifier(obj.expression) && obj.expression.text === 'globalThis' && obj.name.text === 'process');
      if (isProcess) {
        const member = ts.isPropertyAccessExpression(n) ? n.name.text
          : ts.isStringLiteralLike(n.argumentExpression) ? n.argumentExpression.text : '[computed]';
        processUses.push({ member, line: lineOf(n) });
      }
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  const lines = text.split('\n');
  const head: string[] = [];
  for (const l of lines) {
    const t = l.trim();
    if (t === '' || t.startsWith('//') || t.startsWith('/*') || t.startsWith('*') || t.startsWith('#!')) head.push(t);
    else break;
  }
  return { file, lines: text.endsWith('\n') ? lines.length - 1 : lines.length, imports, processUses, head };
}

/** Every .ts file below the given folders of root, as repository paths, sorted. */
export function listSources(root: string, dirs: string[]): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const e of readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = path.posix.join(rel, e.name);
      if (e.isDirectory()) { if (e.name !== 'node_modules') walk(r); } else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(r);
    }
  };
  for (const d of dirs) if (existsSync(path.join(root, d))) walk(d);
  return out.sort();
}

export function scanTree(root: string, dirs = ['agent', 'scripts', 'fleet']): SourceInfo[] {
  return listSources(root, dirs).map((f) => parseSource(root, f));
}

const folderOf = (file: string, root: string): string => {
  const rest = file.slice(root.length + 1).split('/');
  return rest.length > 1 ? `${root}/${rest[0]}` : file;
};

/** Strongly connected components with more than one member (Tarjan). */
function cycles(nodes: string[], edges: Map<string, Set<string>>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const strong = (v: string): void => {
    idx.set(v, index); low.set(v, index); index++;
    stack.push(v); on.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!idx.has(w)) { strong(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do { w = stack.pop()!; on.delete(w); comp.push(w); } while (w !== v);
      if (comp.length > 1) out.push(comp.sort());
    }
  };
  for (const v of nodes) if (!idx.has(v)) strong(v);
  return out;
}

/** The shortest circle that takes the edge a -> b (b leads back to a inside their component), for the message. */
function circleVia(a: string, b: string, comp: Set<string>, edges: Map<string, Set<string>>): string[] {
  const prev = new Map<string, string>([[b, b]]);
  const queue = [b];
  while (queue.length > 0) {
    const v = queue.shift()!;
    if (v === a) {
      const back = [v];
      for (let c = v; c !== b; ) { c = prev.get(c)!; back.unshift(c); }
      return [a, ...back];
    }
    for (const w of [...(edges.get(v) ?? [])].sort()) {
      if (comp.has(w) && !prev.has(w)) { prev.set(w, v); queue.push(w); }
    }
  }
  return [a, b];
}

/** Everything a file loads at run time, directly or not, with the chain of files that loads it. */
function reached(file: string, byFile: Map<string, SourceInfo>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const queue: [string, string[]][] = [[file, [file]]];
  const visited = new Set([file]);
  while (queue.length > 0) {
    const [f, chain] = queue.shift()!;
    for (const i of byFile.get(f)?.imports ?? []) {
      if (i.typeOnly || out.has(i.target)) continue;
      out.set(i.target, [...chain, i.target]);
      if (byFile.has(i.target) && !visited.has(i.target)) { visited.add(i.target); queue.push([i.target, [...chain, i.target]]); }
    }
  }
  return out;
}

/** A circle written from its smallest member, so its rotations read the same. */
function canonical(circle: string[]): string {
  const ring = circle.slice(0, -1);
  const start = ring.indexOf([...ring].sort()[0]!);
  const turned = [...ring.slice(start), ...ring.slice(0, start)];
  return [...turned, turned[0]].join(' -> ');
}

export function check(sources: SourceInfo[], rules: Rule[]): Violation[] {
  const out: Violation[] = [];
  const fileSet = new Set(sources.map((s) => s.file));
  const byFile = new Map(sources.map((s) => [s.file, s]));
  for (const rule of rules) {
    switch (rule.kind) {
      case 'forbid':
        for (const s of sources) {
          if (!anyMatch(rule.from, s.file) || (rule.unless && anyMatch(rule.unless, s.file))) continue;
          const seen = new Set<string>();
          for (const i of s.imports) {
            if (rule.reach && i.typeOnly) continue;
            if (anyMatch(rule.to, i.target) && i.target !== s.file) {
              seen.add(i.target);
              out.push({ rule: rule.id, key: `${s.file} -> ${i.target}`, message: `${s.file}:${i.line} imports ${i.spec} (${rule.why})` });
            }
          }
          if (!rule.reach) continue;
          for (const [target, via] of reached(s.file, byFile)) {
            if (seen.has(target) || !anyMatch(rule.to, target) || target === s.file) continue;
            seen.add(target);
            out.push({ rule: rule.id, key: `${s.file} -> ${target}`, message: `${s.file} reaches ${target} through ${via.join(' -> ')} (${rule.why})` });
          }
        }
        break;
      case 'only':
        for (const s of sources) {
          if (!anyMatch(rule.from, s.file) || (rule.unless && anyMatch(rule.unless, s.file))) continue;
          const allow = [...rule.from, ...rule.allow.filter((p) => !p.startsWith('!'))];
          const deny = rule.allow.filter((p) => p.startsWith('!')).map((p) => p.slice(1));
          for (const i of s.imports) {
            const denied = deny.length > 0 && anyMatch(deny, i.target);
            // With deny patterns, only what they name is restricted; without, everything not allowed is.
            const restricted = deny.length > 0 ? denied : true;
            if (!restricted || anyMatch(allow, i.target)) continue;
            out.push({ rule: rule.id, key: `${s.file} -> ${i.target}`, message: `${s.file}:${i.line} imports ${i.spec}, outside what it may import (${rule.why})` });
          }
        }
        break;
      case 'process':
        for (const s of sources) {
          if (!anyMatch(rule.scope, s.file) || anyMatch(rule.allowIn, s.file)) continue;
          const seen = new Set<string>();
          for (const u of s.processUses) {
            if (!rule.members.includes(u.member) || seen.has(u.member)) continue;
            seen.add(u.member);
            out.push({ rule: rule.id, key: `${s.file}: process.${u.member}`, message: `${s.file}:${u.line} uses process.${u.member} (${rule.why})` });
          }
          for (const i of s.imports) {
            if (i.target === 'node:process') out.push({ rule: rule.id, key: `${s.file}: node:process`, message: `${s.file}:${i.line} imports node:process (${rule.why})` });
          }
        }
        break;
      case 'cycle': {
        const inScope = sources.filter((s) => anyMatch(rule.scope, s.file));
        const nodeOf = (f: string): string => (rule.level === 'folder' && rule.root ? folderOf(f, rule.root) : f);
        const edges = new Map<string, Set<string>>();
        for (const s of inScope) {
          for (const i of s.imports) {
            if (!fileSet.has(i.target) || !anyMatch(rule.scope, i.target)) continue;
            const a = nodeOf(s.file);
            const b = nodeOf(i.target);
            if (a === b) continue;
            if (!edges.has(a)) edges.set(a, new Set());
            edges.get(a)!.add(b);
          }
        }
        const nodes = [...new Set(inScope.map((s) => nodeOf(s.file)))].sort();
        for (const comp of cycles(nodes, edges)) {
          // One violation per knot, named by its members: a knot that grows or shrinks is a new one.
          const members = new Set(comp);
          const circles = comp.flatMap((a) => [...(edges.get(a) ?? [])].filter((b) => members.has(b)).sort().map((b) => canonical(circleVia(a, b, members, edges))));
          out.push({ rule: rule.id, key: comp.join(' <-> '), message: `import circle among ${comp.join(', ')}: ${[...new Set(circles)].join('; ')} (${rule.why})` });
        }
        break;
      }
      case 'size':
        for (const s of sources) {
          if (!anyMatch(rule.scope, s.file) || s.lines <= rule.maxLines) continue;
          const reason = s.head.find((l) => l.startsWith(rule.marker) && l.slice(rule.marker.length).trim().length > 0);
          if (!reason) out.push({ rule: rule.id, key: s.file, message: `${s.file} has ${s.lines} lines and no "${rule.marker} <reason>" line at its top (${rule.why})` });
        }
        break;
    }
  }
  return out;
}

export interface Verdict {
  /** Violations no exception covers: each one fails the test. */
  open: Violation[];
  /** Violations an exception covers. */
  excused: { violation: Violation; exception: KnownException }[];
  /** Exceptions that match no violation any more: remove them. */
  stale: KnownException[];
}

export function judge(violations: Violation[], exceptions: KnownException[]): Verdict {
  const open: Violation[] = [];
  const excused: Verdict['excused'] = [];
  const used = new Set<KnownException>();
  for (const v of violations) {
    const e = exceptions.find((x) => x.rule === v.rule && x.key === v.key);
    if (e) { excused.push({ violation: v, exception: e }); used.add(e); } else open.push(v);
  }
  return { open, excused, stale: exceptions.filter((e) => !used.has(e)) };
}
