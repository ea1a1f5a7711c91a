import { execFileSync } from 'node:child_process';
import { createHash, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ID_RE } from '../../agent/protocol/schemas.js';
import { deviceTopic, parseDeviceTopic } from '../../agent/protocol/topics.js';
import { parseManifest, verifyManifestSig } from '../../agent/update/manifest.js';
import { Requester } from './cmd.js';
import { CONNECTION_HELP, CONNECTION_OPTIONS, CliError, type Io, connect, connectionFrom, parseDuration } from './conn.js';
import { SIGNING_HELP, SIGNING_OPTIONS, signerFrom } from './sign.js';
import { termSafe } from './table.js';

// Issue 13 item 4: a release goes to a canary share of a group first; the rest get it only when
// every canary's heartbeat shows the new version healthy. A canary that rolls back (its
// `update-failed` event) or stays silent stops the rollout, and the rest are never sent anything.

export const UPDATE_HELP = `Usage: signagectl update (--group G | --device ID[,ID...]) --file signage-agent-V.tar.gz --key FILE
                        --url-base URL [--canary 5%|N] [--discover S] [--wait S]

Rolls a release (npm run release) out to screens: sends each the update command (PROTOCOL §7)
with the tarball's URL (--url-base + its file name: where you put the file, http(s):// or a
file:// path the screens can read), its sha256, its version and its manifest signature, and
waits for each screen's heartbeat to show the new version healthy.
  --group G       the screens whose heartbeats say they are in G (listened for --discover)
  --device IDS    these screens (comma-separated) instead
  --canary P      first P of them (5%, or a count; at least one), the rest only when all of
                  those are healthy; without it, all at once. Screens are taken in id order.
  --discover S    how long to listen for heartbeats to find the group (default 35s)
  --wait S        how long a screen may take to download, switch and prove itself (default 20m)
Exit 0 when every screen runs the new version healthy; 1 when any failed (the rollout stops
after a failed canary; the screens not yet sent anything are listed).

${SIGNING_HELP}

${CONNECTION_HELP}`;

interface Release {
  file: string;
  sha256: string;
  version: string;
  manifestSig: string;
  /** manifest.json as signed. */
  bytes: Buffer;
}

/** The tarball's sha256, and its manifest's version and signature, read from inside it. */
function readRelease(file: string): Release {
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch (e) {
    throw new CliError(`--file ${file}: ${(e as Error).message}`);
  }
  const inside = (name: string): Buffer => {
    try {
      return execFileSync('tar', ['-xzOf', file, `./${name}`], { maxBuffer: 64 << 20 });
    } catch {
      throw new CliError(`--file ${file}: no ${name} inside: not a release from npm run release`);
    }
  };
  const bytes = inside('manifest.json');
  const manifestSig = inside('manifest.sig').toString('utf8').trim();
  let version: string;
  try {
    version = parseManifest(bytes).version;
  } catch (e) {
    throw new CliError(`--file ${file}: ${(e as Error).message}`);
  }
  return { file, sha256: createHash('sha256').update(data).digest('hex'), version, manifestSig, bytes };
}

type Outcome = { ok: true; detail: string } | { ok: false; detail: string };

interface Seen {
  version?: string;
  state?: string;
  groups?: string[];
  failed?: string;
}

export async function updateCommand(argv: string[], io: Io): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { ...CONNECTION_OPTIONS, ...SIGNING_OPTIONS, expires: { type: 'string' }, group: { type: 'string' }, device: { type: 'string' }, file: { type: 'string' }, 'url-base': { type: 'string' }, canary: { type: 'string' }, discover: { type: 'string' }, wait: { type: 'string' } },
  });
  if (values.help) return (io.out(UPDATE_HELP), 0);
  const conn = connectionFrom(values);
  if ((values.group === undefined) === (values.device === undefined)) throw new CliError('give exactly one of --group G or --device ID[,ID...]');
  if (values.group !== undefined && !ID_RE.test(values.group)) throw new CliError(`--group: "${values.group}" is not a group name`);
  const listed = values.device?.split(',').map((d) => d.trim()).filter((d) => d !== '');
  for (const d of listed ?? []) if (!ID_RE.test(d)) throw new CliError(`--device: "${d}" is not a device id`);
  if (values.file === undefined) throw new CliError('--file signage-agent-V.tar.gz is required');
  if (values['url-base'] === undefined) throw new CliError('--url-base URL is required (where the screens fetch the file from)');
  const signer = signerFrom(values);
  if (!signer) throw new CliError('--key FILE is required: screens take updates only signed');
  const rel = readRelease(values.file);
  // The screens would refuse a manifest this key did not sign: say so before sending anything.
  const own = verifyManifestSig(rel.bytes, rel.manifestSig, (id) => (id === signer.keyId ? createPublicKey(signer.key) : `manifest.sig names key "${id}", --key is "${signer.keyId}"`));
  if (!own.ok) throw new CliError(`--file: ${own.reason}`);
  const url = `${values['url-base'].replace(/\/+$/, '')}/${path.basename(values.file)}`;
  const discoverMs = parseDuration(values.discover ?? '35s', '--discover');
  const waitMs = parseDuration(values.wait ?? '20m', '--wait');

  const client = await connect(conn);
  const seen = new Map<string, Seen>();
  const wake = new Set<() => void>();
  client.on('message', (topic: string, payload: Buffer) => {
    const t = parseDeviceTopic(conn.prefix, topic);
    if (!t) return;
    let doc: Record<string, unknown>;
    try {
      doc = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
    } catch {
      return;
    }
    const s = seen.get(t.deviceId) ?? {};
    if (t.kind === 'heartbeat') {
      if (typeof doc.agentVersion === 'string') s.version = doc.agentVersion;
      const u = doc.update as { state?: unknown } | undefined;
      s.state = typeof u?.state === 'string' ? u.state : undefined;
      if (Array.isArray(doc.groups)) s.groups = doc.groups.filter((g): g is string => typeof g === 'string');
    } else if (t.kind === 'event' && doc.type === 'update-failed') {
      const d = doc.detail as { version?: unknown; reason?: unknown; stage?: unknown } | undefined;
      if (d?.version === rel.version) s.failed = `${String(d.stage ?? '?')}: ${String(d.reason ?? 'no reason given')}`;
    }
    seen.set(t.deviceId, s);
    for (const w of wake) w();
  });
  const req = new Requester(client, conn.prefix, { signer, expires: values.expires });
  try {
    await client.subscribeAsync([deviceTopic(conn.prefix, '+', 'heartbeat'), deviceTopic(conn.prefix, '+', 'event')], { qos: 1 });
    let targets: string[];
    if (listed) targets = [...new Set(listed)].sort();
    else {
      io.err(`signagectl update: listening ${Math.round(discoverMs / 1000)} s for the heartbeats of group ${values.group}`);
      await new Promise((r) => setTimeout(r, discoverMs));
      targets = [...seen].filter(([, s]) => s.groups?.includes(values.group!)).map(([id]) => id).sort();
    }
    if (targets.length === 0) throw new CliError(`no screens found${values.group ? ` in group ${values.group} (none sent a heartbeat within --discover)` : ''}`, 1);
    await req.start(targets);
    const canaryN = values.canary === undefined ? targets.length : canaryCount(values.canary, targets.length);
    const waves = canaryN < targets.length ? [targets.slice(0, canaryN), targets.slice(canaryN)] : [targets];
    io.out(`release ${rel.version} (${rel.sha256.slice(0, 12)}…) to ${targets.length} screen(s)${waves.length > 1 ? `: canary ${waves[0]!.join(', ')} first` : ''}`);
    let failed = 0;
    for (const [i, wave] of waves.entries()) {
      const results = await Promise.all(wave.map(async (id) => [id, await rollOne(id)] as const));
      for (const [id, r] of results) io.out(`${id}\t${r.ok ? 'ok' : 'FAILED'}\t${termSafe(r.detail)}`);
      failed += results.filter(([, r]) => !r.ok).length;
      if (failed > 0 && i + 1 < waves.length) {
        const untouched = waves.slice(i + 1).flat();
        io.err(`signagectl update: the canary failed; stopped. Not sent anything: ${untouched.join(', ')}`);
        return 1;
      }
    }
    return failed === 0 ? 0 : 1;
  } finally {
    req.stop();
    await client.endAsync().catch(() => undefined);
  }

  async function rollOne(id: string): Promise<Outcome> {
    const s0 = seen.get(id);
    if (s0?.version === rel.version && s0.state !== 'proving') return { ok: true, detail: `already on ${rel.version}` };
    if (s0) delete s0.failed;
    const answer = await req.send(id, 'update', { url, sha256: rel.sha256, version: rel.version, manifestSig: rel.manifestSig }, 30_000);
    if (!answer) return { ok: false, detail: 'no answer to the update command (offline?)' };
    if (!answer.ok) return { ok: false, detail: `refused: ${answer.error}` };
    const until = Date.now() + waitMs;
    for (;;) {
      const s = seen.get(id);
      if (s?.failed) return { ok: false, detail: `update-failed ${s.failed}; running ${s.version ?? '?'}` };
      if (s?.version === rel.version && s.state === 'healthy') return { ok: true, detail: `${rel.version} healthy` };
      const left = until - Date.now();
      if (left <= 0) return { ok: false, detail: `not healthy on ${rel.version} within ${Math.round(waitMs / 1000)} s (last heartbeat: ${s?.version ?? '?'} ${s?.state ?? ''})` };
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          wake.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(left, 5000));
        wake.add(done);
      });
    }
  }
}

/** `5%` of n (rounded up) or a count; at least one, at most n. */
export function canaryCount(flag: string, n: number): number {
  const m = /^(\d+(?:\.\d+)?)(%?)$/.exec(flag.trim());
  if (!m) throw new CliError(`--canary: "${flag}" must be a share like 5% or a count`);
  const k = m[2] === '%' ? Math.ceil((Number(m[1]) / 100) * n) : Math.floor(Number(m[1]));
  return Math.min(n, Math.max(1, k));
}
