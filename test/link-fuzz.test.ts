import { generateKeyPairSync, sign } from 'node:crypto';
import fc from 'fast-check';
import t from 'tap';
import { assignmentSchema, commandSchema, overrideSchema } from '../agent/protocol/schemas.js';
import { decodeCommand } from '../agent/link/commands.js';
import { keyIdOf, parseKeyRing } from '../agent/protocol/envelope.js';
import { decodeDesired } from '../agent/link/intake.js';
import { assignment } from './helpers/link-rig.js';

// The decoders are total: any bytes give either a document that passes its schema, a clear
// (empty override), or a rejection with a reason. Never a throw.

const TARGET = 'device/dev-1';
const { publicKey, privateKey } = generateKeyPairSync('ed25519');
const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(12);
const keys = parseKeyRing([raw.toString('base64')])!;
const keyId = keyIdOf(raw);

const validDocs: Record<'assignment' | 'override' | 'cmd', unknown[]> = {
  assignment: [
    assignment(7, ['a', 'b'], { loop: [{ url: 'file:///srv/x.mp4', sha256: 'b'.repeat(64) }] }),
    { version: 1, campaigns: [{ id: 'x', media: { url: 'http://h/x', sha256: 'C'.repeat(64), durationMs: 30000 }, startDate: '2024-08-15', endDate: '2024-10-10', timesPerDay: 0, weekdays: [1, 7], priority: -3 }] },
  ],
  override: [{ version: 3, campaigns: { c1: { timesPerDay: 20, windows: ['06:00-07:00'] } }, expiresAt: '2024-09-01T00:00:00+07:00' }],
  cmd: [{ id: 'c-42', name: 'play-now', args: { campaignId: 'ihanoi' }, replyTo: 'r/x', expiresAt: '2030-01-01T00:00:00Z' }],
};

function check(kind: 'assignment' | 'override' | 'cmd', bytes: Uint8Array, signed: boolean): boolean {
  const k = signed ? keys : undefined;
  if (kind === 'cmd') {
    const r = decodeCommand(bytes, TARGET, k, Date.now());
    if (r.ok) return commandSchema.safeParse(r.doc).success;
    return typeof r.reason === 'string' && r.reason.length > 0;
  }
  const r = decodeDesired(kind, TARGET, bytes, k, Date.now());
  if (!r.ok) return typeof r.reason === 'string' && r.reason.length > 0;
  if ('clear' in r) return kind === 'override' && bytes.length === 0;
  return (kind === 'assignment' ? assignmentSchema : overrideSchema).safeParse(r.doc).success;
}

/** A JSON value with the shape of a valid document, randomly mutated at one path. */
function mutate(doc: unknown, path: number[], replacement: unknown, mode: number): unknown {
  const clone = JSON.parse(JSON.stringify(doc)) as unknown;
  let node: any = clone;
  for (let depth = 0; depth < path.length; depth++) {
    if (node === null || typeof node !== 'object') break;
    const keys = Object.keys(node);
    if (keys.length === 0) break;
    const key = keys[path[depth]! % keys.length]!;
    const last = depth === path.length - 1 || node[key] === null || typeof node[key] !== 'object';
    if (last) {
      if (mode === 0) node[key] = replacement;
      else if (mode === 1) delete node[key];
      else node[`${key}_x`] = replacement;
      break;
    }
    node = node[key];
  }
  return clone;
}

const kinds = fc.constantFrom<'assignment' | 'override' | 'cmd'>('assignment', 'override', 'cmd');

t.test('random bytes never throw', async (t) => {
  fc.assert(
    fc.property(kinds, fc.uint8Array({ maxLength: 2048 }), fc.boolean(), (kind, bytes, signed) => check(kind, bytes, signed)),
    { numRuns: 3000 },
  );
  t.pass('3000 random byte strings decoded to a doc or a reason');
});

t.test('random JSON values never throw', async (t) => {
  fc.assert(fc.property(kinds, fc.jsonValue({ maxDepth: 6 }), fc.boolean(), (kind, v, signed) => check(kind, Buffer.from(JSON.stringify(v) ?? ''), signed)), { numRuns: 3000 });
  t.pass('3000 JSON values');
});

t.test('mutated valid documents: accepted-and-valid or rejected-with-reason', async (t) => {
  let accepted = 0;
  let rejected = 0;
  fc.assert(
    fc.property(
      kinds,
      fc.nat(),
      fc.array(fc.nat(), { minLength: 1, maxLength: 6 }),
      fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom(-1, 0, 1e308, '', 'x'.repeat(300), null, [], {}, '__proto__', 'constructor', '24:00-25:00')),
      fc.integer({ min: 0, max: 2 }),
      fc.boolean(),
      (kind, pick, path, replacement, mode, signed) => {
        const docs = validDocs[kind];
        let doc = mutate(docs[pick % docs.length], path, replacement, mode);
        if (signed) doc = { ...(doc as object), target: TARGET, issuedAt: new Date().toISOString() };
        const bytes = Buffer.from(JSON.stringify(doc));
        const wire = signed ? Buffer.from(JSON.stringify({ payload: bytes.toString('base64'), sig: sign(null, bytes, privateKey).toString('base64'), keyId })) : bytes;
        const ok = check(kind, wire, signed);
        const d = kind === 'cmd' ? decodeCommand(wire, TARGET, signed ? keys : undefined, Date.now()) : decodeDesired(kind, TARGET, wire, signed ? keys : undefined, Date.now());
        if (d.ok) accepted++;
        else rejected++;
        return ok;
      },
    ),
    { numRuns: 4000 },
  );
  t.ok(accepted > 0 && rejected > 0, `both outcomes exercised (accepted ${accepted}, rejected ${rejected})`);
});

t.test('mutated envelopes never throw', async (t) => {
  const bytes = Buffer.from(JSON.stringify({ ...(validDocs.assignment[0] as object), target: TARGET, issuedAt: new Date().toISOString() }));
  const env = { payload: bytes.toString('base64'), sig: sign(null, bytes, privateKey).toString('base64'), keyId };
  t.ok(check('assignment', Buffer.from(JSON.stringify(env)), true), 'the unmutated envelope is accepted');
  fc.assert(
    fc.property(fc.constantFrom('payload', 'sig', 'keyId', 'extra'), fc.oneof(fc.string(), fc.base64String(), fc.jsonValue({ maxDepth: 1 })), (field, value) => {
      const e: Record<string, unknown> = { ...env, [field]: value };
      return check('assignment', Buffer.from(JSON.stringify(e)), true);
    }),
    { numRuns: 2000 },
  );
  t.pass('2000 mutated envelopes');
});

t.test('deep nesting and huge numbers do not throw', async (t) => {
  for (const s of ['['.repeat(100_000) + ']'.repeat(100_000), '{"version":1e400,"campaigns":[]}', '{"__proto__":{"version":1},"version":2,"campaigns":[]}', '"\\ud800"']) {
    t.ok(check('assignment', Buffer.from(s), false), s.slice(0, 40));
    t.ok(check('cmd', Buffer.from(s), false), s.slice(0, 40));
  }
});
