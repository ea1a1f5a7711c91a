import { parseArgs } from 'node:util';
import { assignmentSchema, droppedKeys, formatIssues, instantSchema, overrideSchema } from '../../agent/protocol/schemas.js';
import { CONNECTION_HELP, CONNECTION_OPTIONS, CliError, type Io, collect, connect, connectionFrom, parseDuration, readJsonObject, targetTopics } from './conn.js';
import { SIGNING_HELP, SIGNING_OPTIONS, signerFrom, signFor } from './sign.js';

// `assign` and `override`: retained desired state (PROTOCOL §3–§5).
//
// Versions: the agent ignores a document whose version is not above the last one it applied
// on that topic, and remembers that version even when the retained message is gone (an override
// cleared with the empty payload; a broker restarted without persistence). So signagectl
// publishes version = max(the file's version, retained + 1, the current Unix time in seconds):
// it keeps rising across clears and lost retained messages, and a file may still jump ahead.
// Two operators publishing in the same second can race; the retained topic holds the later one.

export const ASSIGN_HELP = `Usage: signagectl assign (--device ID | --group G) --file assignment.json [--not-after ISO|+30d]
                        [--key FILE [--key-id ID]] [--dry-run]

Validates the file against the contract (PROTOCOL §4; every problem listed), reads the version
retained on the topic, and publishes the file retained (QoS 1) on {prefix}/device/ID/assignment or
{prefix}/group/G/assignment with version = max(the file's version, retained + 1, Unix time in
seconds), so versions keep rising even if the broker lost its retained messages. The file's
"version" may be omitted. --dry-run: validate and show what would be published.
  --wait S        how long to wait for the retained document (default 1s)
  --not-after T   the assignment ends then (an instant with Z or an offset, or +30m, +6h, +30d):
                  screens drop it from what is in force, and refuse it (a replayed copy) after it

${SIGNING_HELP}

${CONNECTION_HELP}`;

export const OVERRIDE_HELP = `Usage: signagectl override (--device ID | --group G) --campaign C [--times N] [--windows W[,W...]]
                          [--expires ISO|+6h] [--replace] [--dry-run]
       signagectl override (--device ID | --group G) --clear
       (either with [--key FILE [--key-id ID]] on signed screens)

Sets a frequency override (PROTOCOL §5), retained, QoS 1, version = max(retained + 1, Unix time in
seconds), which stays above the version of a cleared override. Overrides of other
campaigns already on the topic are kept (--replace drops them); the expiry applies to the whole
document. --clear publishes the empty retained payload, which removes the override; with --key it
publishes a signed override with no campaigns and the next version instead (§9: signed screens
refuse an unsigned empty payload).
  --times N        plays a day for the campaign
  --windows W,...  HH:MM-HH:MM windows replacing the campaign's own
  --expires T      an instant with Z or an offset (2024-09-01T00:00:00+07:00), or +30m, +6h,
                   +2d from now (omitted: until cleared)
  --wait S         how long to wait for the retained document (default 1s)

${SIGNING_HELP}

${CONNECTION_HELP}`;

/** max(file's, retained + 1, Unix seconds): see the note at the top. */
export function nextVersion(retained: number, fromFile: number, now = Date.now()): number {
  return Math.max(fromFile, retained + 1, Math.floor(now / 1000));
}

/** The version of a retained document, plain or a §9 envelope; 0 when none or unreadable. */
export function retainedVersion(payload: Buffer | undefined): number {
  const doc = retainedDoc(payload);
  return typeof doc?.version === 'number' && Number.isFinite(doc.version) ? doc.version : 0;
}

function retainedDoc(payload: Buffer | undefined): Record<string, unknown> | undefined {
  if (!payload || payload.length === 0) return undefined;
  try {
    let doc = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
    if (typeof doc.payload === 'string' && typeof doc.sig === 'string') doc = JSON.parse(Buffer.from(doc.payload, 'base64').toString('utf8')) as Record<string, unknown>;
    return doc && typeof doc === 'object' ? doc : undefined;
  } catch {
    return undefined;
  }
}

export async function assignCommand(argv: string[], io: Io): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...CONNECTION_OPTIONS, ...SIGNING_OPTIONS, device: { type: 'string' }, group: { type: 'string' }, file: { type: 'string' }, wait: { type: 'string' }, 'not-after': { type: 'string' }, 'dry-run': { type: 'boolean' } } });
  if (values.help) return help(io, ASSIGN_HELP);
  const conn = connectionFrom(values);
  const target = targetTopics(conn.prefix, values);
  const signer = signerFrom(values);
  const now = Date.now();
  const { label } = target;
  if (values.file === undefined) throw new CliError('--file assignment.json is required');
  let doc = readJsonObject(values.file);
  if (values['not-after'] !== undefined) doc = { ...doc, notAfter: parseExpiry(values['not-after'], now, '--not-after') };
  const fileVersion = doc.version;
  const check = assignmentSchema.safeParse({ ...doc, version: fileVersion ?? 1 });
  if (!check.success) throw new CliError([`${values.file} is not a valid assignment:`, ...formatIssues(check.error).map((p) => `  ${p}`)].join('\n'));
  // Agents ignore fields they do not know (PROTOCOL v1.1 §3), so a misspelt optional field
  // ("window") would silently fall back to its default: say so while a person is looking.
  for (const k of droppedKeys(doc, check.data)) io.err(`signagectl assign: warning: ${k}: not a field of the contract; agents will ignore it`);

  const topic = target.topic('assignment');
  const client = await connect(conn);
  try {
    const current = retainedVersion((await collect(client, [topic], parseDuration(values.wait ?? '1s', '--wait'))).get(topic));
    const version = nextVersion(current, typeof fileVersion === 'number' ? fileVersion : 0, now);
    const { text, doc: out } = signFor({ ...doc, version }, signer, target.target, now);
    const ids = check.data.campaigns.map((c) => c.id);
    const what = `${label} assignment version ${version} (retained was ${current || 'none'}), ${ids.length} campaign(s)${ids.length ? `: ${ids.join(', ')}` : ''}${signer ? `, signed with key ${signer.keyId}` : ''}`;
    if (values['dry-run']) {
      io.out(`would publish ${topic}: ${what}`);
    } else {
      await client.publishAsync(topic, text, { qos: 1, retain: true });
      io.out(`published ${topic} (retained, QoS 1): ${what}`);
    }
    io.out(JSON.stringify(out, null, 2));
    return 0;
  } finally {
    await client.endAsync().catch(() => undefined);
  }
}

export async function overrideCommand(argv: string[], io: Io, now = Date.now()): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...CONNECTION_OPTIONS,
      ...SIGNING_OPTIONS,
      device: { type: 'string' },
      group: { type: 'string' },
      campaign: { type: 'string' },
      times: { type: 'string' },
      windows: { type: 'string', multiple: true },
      expires: { type: 'string' },
      clear: { type: 'boolean' },
      replace: { type: 'boolean' },
      wait: { type: 'string' },
      'dry-run': { type: 'boolean' },
    },
  });
  if (values.help) return help(io, OVERRIDE_HELP);
  const conn = connectionFrom(values);
  const target = targetTopics(conn.prefix, values);
  const { label } = target;
  const topic = target.topic('override');
  const signer = signerFrom(values);

  if (values.clear) {
    if (values.campaign !== undefined || values.times !== undefined) throw new CliError('--clear takes no --campaign/--times');
    const client = await connect(conn);
    try {
      if (signer) {
        // §9: a signed clear is a signed override without campaigns and with the next version.
        const payload = (await collect(client, [topic], parseDuration(values.wait ?? '1s', '--wait'))).get(topic);
        const { text, doc } = signFor({ version: nextVersion(retainedVersion(payload), 0, now), campaigns: {} }, signer, target.target, now);
        if (!values['dry-run']) await client.publishAsync(topic, text, { qos: 1, retain: true });
        io.out(`${values['dry-run'] ? 'would clear' : 'cleared'} ${topic} (signed empty override version ${doc.version}, key ${signer.keyId}): ${label} has no override`);
        return 0;
      }
      if (!values['dry-run']) await client.publishAsync(topic, '', { qos: 1, retain: true });
      io.out(`${values['dry-run'] ? 'would clear' : 'cleared'} ${topic} (empty retained payload): ${label} has no override`);
      return 0;
    } finally {
      await client.endAsync().catch(() => undefined);
    }
  }

  if (values.campaign === undefined) throw new CliError('--campaign C is required (or --clear)');
  if (values.times === undefined && values.windows === undefined) throw new CliError('give --times N and/or --windows');
  const entry: { timesPerDay?: number; windows?: string[] } = {};
  if (values.times !== undefined) {
    if (!/^\d+$/.test(values.times)) throw new CliError(`--times: "${values.times}" must be a whole number`);
    entry.timesPerDay = Number(values.times);
  }
  if (values.windows !== undefined) entry.windows = values.windows.flatMap((w) => w.split(',')).map((w) => w.trim()).filter(Boolean);
  const expiresAt = values.expires === undefined ? undefined : parseExpiry(values.expires, now);

  const client = await connect(conn);
  try {
    const payload = (await collect(client, [topic], parseDuration(values.wait ?? '1s', '--wait'))).get(topic);
    const current = retainedDoc(payload);
    const currentVersion = retainedVersion(payload);
    const kept = !values.replace && current?.campaigns && typeof current.campaigns === 'object' ? (current.campaigns as Record<string, unknown>) : {};
    const plain = { version: nextVersion(currentVersion, 0, now), campaigns: { ...kept, [values.campaign]: entry }, ...(expiresAt ? { expiresAt } : {}) };
    const { text, doc } = signFor(plain, signer, target.target, now);
    const check = overrideSchema.safeParse(doc);
    if (!check.success) throw new CliError(['not a valid override:', ...formatIssues(check.error).map((p) => `  ${p}`)].join('\n'));
    if (!values['dry-run']) await client.publishAsync(topic, text, { qos: 1, retain: true });
    io.out(`${values['dry-run'] ? 'would publish' : 'published'} ${topic} (retained, QoS 1): ${label} override version ${doc.version}${expiresAt ? `, expires ${expiresAt}` : ', until cleared'}${signer ? `, signed with key ${signer.keyId}` : ''}`);
    io.out(JSON.stringify(doc, null, 2));
    return 0;
  } finally {
    await client.endAsync().catch(() => undefined);
  }
}

/** An RFC 3339 instant with Z or an offset (kept as given) or +N{m,h,d} from now (as UTC ISO, …Z). */
export function parseExpiry(s: string, now: number, flag = '--expires'): string {
  if (s.startsWith('+')) return new Date(now + parseDuration(s.slice(1), flag)).toISOString();
  const r = instantSchema.safeParse(s);
  // The agent rejects an instant without an offset (PROTOCOL v1.1 §5): say so before publishing.
  if (!r.success) throw new CliError(`${flag}: "${s}" ${r.error.issues[0]?.message ?? 'is not an instant'}; or use +30m, +6h, +2d`);
  if (Date.parse(s) <= now) throw new CliError(`${flag}: ${s} is in the past`);
  return s;
}

function help(io: Io, text: string): number {
  io.out(text);
  return 0;
}
