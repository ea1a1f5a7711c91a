import { parseArgs } from 'node:util';
import { readKeyEntry, sealEnvelope } from '../../agent/protocol/envelope.js';
import { formatIssues } from '../../agent/protocol/schemas.js';
import { fleetTopic } from '../../agent/protocol/topics.js';
import { keySetSchema } from '../../agent/protocol/trust.js';
import { CONNECTION_HELP, CONNECTION_OPTIONS, CliError, type Io, collect, connect, connectionFrom, parseDuration, readJsonObject } from './conn.js';
import { nextVersion, retainedVersion } from './desired.js';
import { readSigner } from './sign.js';

// `keys publish`: the key set (PROTOCOL §9 v1.1) on {p}/keys, retained, signed by a root key.
// Rotation and revocation are both "publish a new set": the screens apply the highest version.

export const KEYS_HELP = `Usage: signagectl keys publish --root-key FILE [--root-key-id ID] --file keys.json [--dry-run]

Signs the key set in keys.json with a root key (one of the screens' security.rootKeys; keep it
offline and bring it out for this only) and publishes it retained (QoS 1) on {prefix}/keys. The
screens verify it, apply it if its version is above theirs, keep it across restarts, and from then
on accept documents signed by the keys it lists, each only for its targets and kinds and until its
expiresAt. A key left out of a newer set is revoked. keys.json:
  {"keys":[{"keyId":"noc-2025","publicKey":"<base64 from keygen>",
            "scopes":{"targets":["device/*"|"device/ID"|"group/G"|"group/*"|"*"],
                      "kinds":["assignment","override","cmd"]},
            "expiresAt":"2025-12-31T00:00:00Z"}]}
"version" may be omitted (max(the file's, retained + 1, Unix seconds)); "issuedAt" is set to now.
  --root-key-id ID  the root key's id in the screens' config (default: derived from the key)
  --wait S          how long to wait for the retained set (default 1s)

${CONNECTION_HELP}`;

export async function keysCommand(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') return (io.out(KEYS_HELP), sub === undefined ? 2 : 0);
  if (sub !== 'publish') throw new CliError(`unknown subcommand "${sub}" (keys publish)`);
  const { values } = parseArgs({ args: rest, options: { ...CONNECTION_OPTIONS, 'root-key': { type: 'string' }, 'root-key-id': { type: 'string' }, file: { type: 'string' }, wait: { type: 'string' }, 'dry-run': { type: 'boolean' } } });
  if (values.help) return (io.out(KEYS_HELP), 0);
  const conn = connectionFrom(values);
  if (values['root-key'] === undefined) throw new CliError('--root-key FILE is required');
  if (values.file === undefined) throw new CliError('--file keys.json is required');
  const root = readSigner(values['root-key'], values['root-key-id'], '--root-key');
  const file = readJsonObject(values.file);
  const now = Date.now();
  const check = (doc: Record<string, unknown>): void => {
    const r = keySetSchema.safeParse(doc);
    const problems = r.success ? [] : formatIssues(r.error);
    // The agent refuses the whole set for one bad key: find it here, with the others.
    (Array.isArray(doc.keys) ? doc.keys : []).forEach((k: unknown, i: number) => {
      const { keyId, publicKey } = (k ?? {}) as { keyId?: unknown; publicKey?: unknown };
      if (typeof keyId !== 'string' || typeof publicKey !== 'string') return;
      const e = readKeyEntry(`${keyId}:${publicKey}`);
      if ('problem' in e) problems.push(`keys.${i}.publicKey: ${e.problem}`);
      if (keyId === root.keyId) problems.push(`keys.${i}.keyId: "${keyId}" is the root key; a root key signs key sets only`);
    });
    if (problems.length) throw new CliError([`${values.file} is not a valid key set:`, ...problems.map((p) => `  ${p}`)].join('\n'));
  };
  check({ ...file, version: typeof file.version === 'number' ? file.version : 1, issuedAt: new Date(now).toISOString() });

  const topic = fleetTopic(conn.prefix, 'keys');
  const client = await connect(conn);
  try {
    const current = retainedVersion((await collect(client, [topic], parseDuration(values.wait ?? '1s', '--wait'))).get(topic));
    const doc: Record<string, unknown> = { ...file, version: nextVersion(current, typeof file.version === 'number' ? file.version : 0, now), issuedAt: new Date(now).toISOString() };
    check(doc);
    const ids = (doc.keys as Array<{ keyId: string }>).map((k) => k.keyId);
    const what = `key set version ${doc.version} (retained was ${current || 'none'}), signed by root key ${root.keyId}: ${ids.length ? ids.join(', ') : 'no keys'}`;
    if (values['dry-run']) io.out(`would publish ${topic}: ${what}`);
    else {
      await client.publishAsync(topic, sealEnvelope(doc, root.key, root.keyId), { qos: 1, retain: true });
      io.out(`published ${topic} (retained, QoS 1): ${what}`);
    }
    return 0;
  } finally {
    await client.endAsync().catch(() => undefined);
  }
}
