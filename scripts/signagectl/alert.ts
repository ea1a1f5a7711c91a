import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fleetTopic } from '../../agent/protocol/topics.js';
import { alertDocSchema, formatIssues, instantSchema } from '../../agent/protocol/schemas.js';
import { CONNECTION_HELP, CONNECTION_OPTIONS, CliError, type Io, collect, connect, connectionFrom, parseDuration, targetTopics } from './conn.js';
import { nextVersion, retainedVersion } from './desired.js';
import { SIGNING_HELP, SIGNING_OPTIONS, signerFrom, signFor } from './sign.js';

// `alert`: the emergency interrupt (PROTOCOL §10), retained on the device's, a group's or the
// fleet's alert topic, with the same version rule as `assign` and `override`.

export const ALERT_HELP = `Usage: signagectl alert (--device ID | --group G | --fleet)
                       (--text "..." | --file clip.mp4 [--sha256 H] | --media-url U --sha256 H)
                       --expires +2h|ISO [--starts +10m|ISO] [--repeat-every SEC] [--id ID] [--dry-run]
       signagectl alert (--device ID | --group G | --fleet) --clear
       (either with [--key FILE [--key-id ID]] on signed screens)

Publishes an alert (PROTOCOL §10), retained, QoS 1, version = max(retained + 1, Unix time in
seconds). While it is live it takes the screen at once: the spot playing is cut (an interrupted
play), and the clip loops, or the text is shown full screen, until it expires; campaigns are
re-planned around it. With a future --starts it is pre-staged: screens fetch the clip now and
show it at that instant even with the broker down. Several alerts live on one screen: the one that
started last is shown, the others wait their turn until they expire.
  --text T          shown full screen (large, white on red; Vietnamese letters drawn right)
  --file F          a clip as the screens see it (file://, inside their media.fileRoots); its
                    sha256 is computed here when the file is readable, else give --sha256
  --media-url U     an http(s):// or file:// clip, with --sha256 (as in an assignment)
  --expires T       an instant with Z or an offset, or +30m, +2h from --starts (required; at most 24 h)
  --starts T        an instant with Z or an offset, or +10m from now (default: now)
  --repeat-every S  show it once every S seconds (campaigns play in between) instead of looping
  --id ID           the alert's id (default alert-<Unix seconds>); play events carry alert:ID
  --clear           removes the alert: the empty retained payload, or with --key a signed clear
                    document {"version","clear":true} with the next version
  --wait S          how long to wait for the retained document (default 1s)

${SIGNING_HELP}

${CONNECTION_HELP}`;

function alertTarget(prefix: string, values: { device?: string | undefined; group?: string | undefined; fleet?: boolean | undefined }): { topic: string; label: string; target: string } {
  if (values.fleet) {
    if (values.device !== undefined || values.group !== undefined) throw new CliError('give exactly one of --device ID, --group G or --fleet');
    return { topic: fleetTopic(prefix, 'fleet/alert'), label: 'fleet', target: 'fleet' };
  }
  const t = targetTopics(prefix, values);
  return { topic: t.topic('alert'), label: t.label, target: t.target };
}

/** An instant with an offset, or +duration after `from`. */
function instantOrOffset(s: string, from: number, flag: string): number {
  if (s.startsWith('+')) return from + parseDuration(s.slice(1), flag);
  const r = instantSchema.safeParse(s);
  if (!r.success) throw new CliError(`${flag}: "${s}" ${r.error.issues[0]?.message ?? 'is not an instant'}; or use +30m, +2h`);
  return Date.parse(s);
}

function mediaOf(values: { file?: string | undefined; 'media-url'?: string | undefined; sha256?: string | undefined }): { url: string; sha256: string } {
  const url = values['media-url'];
  if (url !== undefined) {
    if (values.sha256 === undefined) throw new CliError('--media-url needs --sha256 (screens play only verified files)');
    return { url, sha256: values.sha256.toLowerCase() };
  }
  const abs = path.resolve(values.file!);
  let local: string | undefined;
  try {
    local = createHash('sha256').update(readFileSync(abs)).digest('hex');
  } catch {
    local = undefined;
  }
  if (local && values.sha256 !== undefined && values.sha256.toLowerCase() !== local) throw new CliError(`--sha256 does not match ${abs} (its sha256 is ${local})`);
  const sha256 = values.sha256?.toLowerCase() ?? local;
  if (!sha256) throw new CliError(`${abs} is not readable here: give --sha256`);
  return { url: `file://${abs}`, sha256 };
}

export async function alertCommand(argv: string[], io: Io, now = Date.now()): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ...CONNECTION_OPTIONS,
      ...SIGNING_OPTIONS,
      device: { type: 'string' },
      group: { type: 'string' },
      fleet: { type: 'boolean' },
      text: { type: 'string' },
      file: { type: 'string' },
      'media-url': { type: 'string' },
      sha256: { type: 'string' },
      expires: { type: 'string' },
      starts: { type: 'string' },
      'repeat-every': { type: 'string' },
      id: { type: 'string' },
      clear: { type: 'boolean' },
      wait: { type: 'string' },
      'dry-run': { type: 'boolean' },
    },
  });
  if (values.help) return (io.out(ALERT_HELP), 0);
  const conn = connectionFrom(values);
  const { topic, label, target } = alertTarget(conn.prefix, values);
  const signer = signerFrom(values);
  const given = [values.text, values.file, values['media-url']].filter((v) => v !== undefined).length;
  let plain: Record<string, unknown> | undefined;
  if (values.clear) {
    if (given > 0 || values.expires !== undefined) throw new CliError('--clear takes no --text/--file/--media-url/--expires');
  } else {
    if (given !== 1) throw new CliError('give exactly one of --text, --file or --media-url');
    if (values.expires === undefined) throw new CliError('--expires is required (+2h, or an instant; at most 24 h after --starts)');
    const startsAt = values.starts === undefined ? now : instantOrOffset(values.starts, now, '--starts');
    const expiresAt = instantOrOffset(values.expires, startsAt, '--expires');
    if (expiresAt <= now) throw new CliError(`--expires: ${new Date(expiresAt).toISOString()} is in the past`);
    const repeat = values['repeat-every'];
    if (repeat !== undefined && !/^\d+$/.test(repeat)) throw new CliError(`--repeat-every: "${repeat}" must be whole seconds`);
    plain = {
      id: values.id ?? `alert-${Math.floor(now / 1000)}`,
      ...(values.text !== undefined ? { text: values.text } : { media: mediaOf(values) }),
      startsAt: new Date(startsAt).toISOString(),
      expiresAt: new Date(expiresAt).toISOString(),
      ...(repeat !== undefined ? { repeatEverySec: Number(repeat) } : {}),
    };
  }
  // The agent's own check, before connecting: every problem named at once (the version is filled in later).
  const check = alertDocSchema.safeParse({ version: 1, ...(plain ?? { clear: true }) });
  if (!check.success) throw new CliError(['not a valid alert:', ...formatIssues(check.error).map((p) => `  ${p}`)].join('\n'));
  const client = await connect(conn);
  try {
    const payload = (await collect(client, [topic], parseDuration(values.wait ?? '1s', '--wait'))).get(topic);
    const version = nextVersion(retainedVersion(payload), 0, now);
    const verb = values['dry-run'] ? 'would publish' : 'published';
    if (!plain && !signer) {
      if (!values['dry-run']) await client.publishAsync(topic, '', { qos: 1, retain: true });
      io.out(`${values['dry-run'] ? 'would clear' : 'cleared'} ${topic} (empty retained payload): ${label} has no alert`);
      return 0;
    }
    const { text, doc } = signFor({ version, ...(plain ?? { clear: true }) }, signer, target, now);
    if (!values['dry-run']) await client.publishAsync(topic, text, { qos: 1, retain: true });
    const signed = signer ? `, signed with key ${signer.keyId}` : '';
    if (!plain) io.out(`${values['dry-run'] ? 'would clear' : 'cleared'} ${topic} (signed clear version ${version}${signed}): ${label} has no alert`);
    else io.out(`${verb} ${topic} (retained, QoS 1): ${label} alert ${String(plain.id)} version ${version}, ${String(plain.startsAt)} → ${String(plain.expiresAt)}${signed}`);
    io.out(JSON.stringify(doc, null, 2));
    return 0;
  } finally {
    await client.endAsync().catch(() => undefined);
  }
}
