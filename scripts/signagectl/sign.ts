import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { keyIdOf, pubFileBeside, rawPublicKeyOf, sealEnvelope, signingKeyOf } from '../../agent/protocol/envelope.js';
import { ID_RE } from '../../agent/protocol/schemas.js';
import { MAX_COMMAND_LIFETIME_MS } from '../../agent/protocol/trust.js';
import { ConfigError, parseConfig } from '../../agent/config/config.js';
import { CliError, type Io, parseDuration, readJsonObject } from './conn.js';

// PROTOCOL §9 v1.1 for operators: keys made here, and the one signing step every publishing
// command takes (assign, override, cmd, screenshot, report, keys publish; alert and update will
// call signFor too). The agent refuses a signed document without its target and issuedAt, and a
// command without a short expiresAt, so they are filled here, never typed by hand.

export const SIGNING_OPTIONS = {
  key: { type: 'string' },
  'key-id': { type: 'string' },
} as const;

export const SIGNING_HELP = `Signing (PROTOCOL §9: required once the screens have security keys):
  --key FILE       an Ed25519 private key (PEM, from signagectl keygen): the document goes out as a
                   signed envelope naming its target and issuedAt
  --key-id ID      the key's id as the screens know it (default: the id in the ID.pub keygen wrote
                   beside the key, else the first 16 hex digits of the SHA-256 of the public key)`;

export interface Signer {
  keyId: string;
  key: KeyObject;
}

/** Reads an Ed25519 private key (PEM PKCS#8, as keygen or `openssl genpkey -algorithm ed25519` writes it). */
export function readSigner(file: string, keyId: string | undefined, flag = '--key'): Signer {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (e) {
    throw new CliError(`${flag} ${file}: not a private key: ${(e as Error).message}`);
  }
  const pub = pubFileBeside(file);
  const r = signingKeyOf(pem, pub !== undefined && existsSync(pub) ? readFileSync(pub, 'utf8') : undefined, keyId);
  if ('problem' in r) throw new CliError(`${flag} ${file}: ${r.problem}`);
  if (keyId !== undefined && !ID_RE.test(keyId)) throw new CliError(`${flag}-id: "${keyId}" must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`);
  return r;
}

/** The signer of --key/--key-id, or undefined (plain JSON). */
export function signerFrom(flags: { key?: string | undefined; 'key-id'?: string | undefined }): Signer | undefined {
  if (flags.key === undefined) {
    if (flags['key-id'] !== undefined) throw new CliError('--key-id needs --key FILE');
    return undefined;
  }
  return readSigner(flags.key, flags['key-id']);
}

/**
 * The wire text of `doc`: plain JSON, or with a signer the §9 envelope of the document with its
 * `target` (`device/ID`, `group/G`) and `issuedAt` (now) filled in. Returns the document as sent.
 */
export function signFor<T extends Record<string, unknown>>(doc: T, signer: Signer | undefined, target: string, now: number): { text: string; doc: T & { target?: string; issuedAt?: string } } {
  if (!signer) return { text: JSON.stringify(doc), doc };
  const signed = { ...doc, target, issuedAt: new Date(now).toISOString() };
  return { text: sealEnvelope(signed, signer.key, signer.keyId), doc: signed };
}

/** A command's expiresAt: --expires (a duration such as 10m, 2h; at most 24 h) or the default. */
export function commandExpiry(flag: string | undefined, defaultMs: number, now: number): number {
  const ms = flag === undefined ? defaultMs : parseDuration(flag.replace(/^\+/, ''), '--expires');
  if (!(ms > 0)) throw new CliError('--expires: must be a duration above zero');
  if (ms > MAX_COMMAND_LIFETIME_MS) throw new CliError(`--expires: ${flag ?? ''} is more than 24 h; screens refuse a signed command that lives longer`);
  return now + ms;
}

export const KEYGEN_HELP = `Usage: signagectl keygen --out DIR [--id ID]

Makes an Ed25519 key pair for signing (PROTOCOL §9). Writes DIR/ID.key (the private key, PEM,
mode 0600: keep it at the NOC, or offline for a root key) and DIR/ID.pub, and prints the line to
put in the screens' config (security.assignmentKeys or security.rootKeys) or, as publicKey, in a
key set: ID:BASE64. Without --id the id is the one the agent derives from the key itself.
Refuses to overwrite an existing key.`;

export async function keygenCommand(argv: string[], io: Io): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { out: { type: 'string' }, id: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) return (io.out(KEYGEN_HELP), 0);
  if (values.out === undefined) throw new CliError('--out DIR is required');
  if (values.id !== undefined && !ID_RE.test(values.id)) throw new CliError(`--id: "${values.id}" must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`);
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = rawPublicKeyOf(publicKey);
  const id = values.id ?? keyIdOf(raw);
  mkdirSync(values.out, { recursive: true, mode: 0o700 });
  const keyFile = path.join(values.out, `${id}.key`);
  const pubFile = path.join(values.out, `${id}.pub`);
  if (existsSync(keyFile)) throw new CliError(`${keyFile} exists: not overwritten (a lost key cannot be recovered)`);
  // 'wx': never replace a file created meanwhile; mode 0600 from the first byte.
  writeFileSync(keyFile, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600, flag: 'wx' });
  const line = `${id}:${raw.toString('base64')}`;
  writeFileSync(pubFile, `${line}\n`, { mode: 0o644 });
  io.err(`signagectl keygen: private key ${keyFile} (0600), public key ${pubFile}`);
  io.out(line);
  return 0;
}

export const SIGN_CONFIG_HELP = `Usage: signagectl sign-config --config signage-agent.json --key FILE [--key-id ID] [--device ID] [--out FILE]

Signs a screen's config for its boot partition (PROTOCOL §9 envelope, target device/ID, issuedAt
now). A screen whose installed config has security.assignmentKeys or security.rootKeys takes a new
signage-agent.json from its boot partition only signed by one of those keys, for its own device id
(--device, default the config's deviceId: give the current id when the new config renames the
screen), and issued after the signed config it took last. Writes to --out (mode 0640), else stdout.`;

export async function signConfigCommand(argv: string[], io: Io): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { config: { type: 'string' }, device: { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' }, ...SIGNING_OPTIONS },
  });
  if (values.help) return (io.out(SIGN_CONFIG_HELP), 0);
  if (values.config === undefined) throw new CliError('--config FILE is required');
  const signer = signerFrom(values);
  if (!signer) throw new CliError('--key FILE is required');
  const config = readJsonObject(values.config);
  try {
    // Checked with the agent's own parser, as the screen will (its secret files are checked there).
    parseConfig(config, '/etc/signage-agent/signage-agent.json', true);
  } catch (e) {
    if (e instanceof ConfigError) throw new CliError(`${values.config}: config rejected:\n${e.problems.map((p) => `  ${p}`).join('\n')}`);
    throw e;
  }
  const device = values.device ?? (typeof config.deviceId === 'string' ? config.deviceId : '');
  if (!ID_RE.test(device)) throw new CliError(`--device: "${device}" is not a device id`);
  const { text } = signFor(config, signer, `device/${device}`, Date.now());
  if (values.out === undefined) io.out(text);
  else {
    writeFileSync(`${values.out}.tmp`, text + '\n', { mode: 0o640 });
    renameSync(`${values.out}.tmp`, values.out);
    io.err(`signagectl sign-config: ${values.out} signed by ${signer.keyId} for device/${device}`);
  }
  return 0;
}
