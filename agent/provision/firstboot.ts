import { chown, mkdir, readFile, readdir, unlink } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, parseConfig, type Config } from '../config/config.js';
import type { Logger } from '../core/log.js';
import { fsyncDir, writeFileAtomic } from '../fsx/atomic.js';
import { boxKeysOf, plainOf, unsealBootConfig } from './signed-config.js';

// First boot without a keyboard (issue 5): an installer drops signage-agent.json (and the
// MQTT secrets) on the FAT boot partition; on every boot this moves them into /etc after
// validating the config with the agent's own parser. The boot partition is readable by every
// local user, so nothing secret is left there, accepted or not.

export const BOOT_CONFIG = 'signage-agent.json';
export const REJECTED_SUFFIX = '.rejected';
export const ERROR_FILE = 'signage-agent-error.txt';
/** In /etc/signage-agent: the issuedAt of the signed config installed last (an older card is refused). */
export const ISSUED_FILE = 'signage-agent.json.issued-at';

/** Name on the boot partition → name in /etc/signage-agent. */
export const BOOT_SECRETS: Readonly<Record<string, string>> = {
  'signage-agent.mqtt.pass': 'mqtt.pass',
  'signage-agent.ca.crt': 'ca.crt',
  'signage-agent.client.crt': 'client.crt',
  'signage-agent.client.key': 'client.key',
};

export interface Owner {
  uid: number;
  gid: number;
}

export interface FirstbootContext {
  /** Candidates in order (`/boot/firmware`, then `/boot`); the first holding our files is used. */
  bootDirs: string[];
  etcDir: string;
  log: Logger;
  /** Owner of the imported files (the `signage` user); omitted: left as created (tests, --root). */
  owner?: Owner;
  /** Shows the problems on the screen; returns when the card is done. */
  showError?: (lines: string[], previous: Config | undefined) => Promise<void>;
}

export type FirstbootResult =
  | { status: 'nothing'; bootDir?: undefined }
  | { status: 'imported'; bootDir: string; files: string[] }
  | { status: 'rejected'; bootDir: string; problems: string[]; previous: boolean };

export async function importBootConfig(ctx: FirstbootContext): Promise<FirstbootResult> {
  const bootDir = ctx.bootDirs.find((d) => ourFiles(d).length > 0);
  if (!bootDir) return { status: 'nothing' };
  const present = ourFiles(bootDir);
  const secrets = new Map<string, Buffer>();
  for (const [bootName, etcName] of Object.entries(BOOT_SECRETS)) {
    if (present.includes(bootName)) secrets.set(etcName, await readFile(path.join(bootDir, bootName)));
  }
  const hasConfig = present.includes(BOOT_CONFIG);
  const dropped = hasConfig ? await readFile(path.join(bootDir, BOOT_CONFIG), 'utf8') : undefined;
  const previous = readPrevious(ctx.etcDir);
  // Once the installed config has keys, the dropped one must be signed by one of them.
  const unsealed = dropped === undefined ? undefined : unsealBootConfig(dropped, boxKeysOf(previous), readIssuedAt(ctx.etcDir));
  const text = unsealed?.ok ? unsealed.text : undefined;
  const problems = unsealed === undefined ? [] : !unsealed.ok ? [unsealed.problem] : validate(unsealed.text, ctx.etcDir, new Set(secrets.keys()));

  await mkdir(ctx.etcDir, { recursive: true, mode: 0o750 });
  if (problems.length === 0) {
    const files: string[] = [];
    // Secrets first: the agent must never find a config naming a password file not yet there.
    for (const [name, data] of secrets) {
      files.push(await place(path.join(ctx.etcDir, name), data, 0o600, ctx.owner));
    }
    if (text !== undefined) {
      const cfgOwner = ctx.owner ? { uid: 0, gid: ctx.owner.gid } : undefined;
      files.push(await place(path.join(ctx.etcDir, BOOT_CONFIG), text, 0o640, cfgOwner));
      const signed = unsealed?.ok ? unsealed.signed : undefined;
      if (signed) {
        await writeFileAtomic(path.join(ctx.etcDir, ISSUED_FILE), signed.issuedAt + '\n', 0o644);
        ctx.log.info({ keyId: signed.keyId, issuedAt: signed.issuedAt }, 'the boot partition config is signed by a key this box trusts');
      }
    }
    await removeAll(bootDir, [...present, BOOT_CONFIG + REJECTED_SUFFIX, ERROR_FILE]);
    ctx.log.info({ bootDir, files }, 'imported configuration from the boot partition');
    return { status: 'imported', bootDir, files };
  }

  // Rejected: the secrets leave the FAT partition anyway (kept aside in /etc, root only),
  // the config stays for the installer to fix, renamed and with any inline password removed.
  const aside = path.join(ctx.etcDir, 'rejected');
  await mkdir(aside, { recursive: true, mode: 0o700 });
  for (const [name, data] of secrets) await place(path.join(aside, name), data, 0o600, undefined);
  await writeFileAtomic(path.join(bootDir, BOOT_CONFIG + REJECTED_SUFFIX), redact(plainOf(dropped ?? '')));
  const message = [
    'signage-agent: configuration rejected',
    ...problems,
    `Fix ${BOOT_CONFIG}${REJECTED_SUFFIX} on the boot partition, rename it to ${BOOT_CONFIG},`,
    secrets.size > 0 ? 'drop the MQTT secret files again, and reboot.' : 'and reboot.',
    previous ? 'The previous configuration stays in use.' : 'No configuration is installed: the agent does not start.',
  ];
  await writeFileAtomic(path.join(bootDir, ERROR_FILE), message.join('\n') + '\n');
  await removeAll(bootDir, present);
  for (const p of problems) ctx.log.error({ bootDir, problem: p }, `rejected ${BOOT_CONFIG}: ${p}`);
  if (ctx.showError) await ctx.showError(message, previous);
  return { status: 'rejected', bootDir, problems, previous: previous !== undefined };
}

/** Every problem with a dropped config, each naming its key. Empty when it may be installed. */
export function validate(text: string, etcDir: string, importedSecrets: Set<string>): string[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return [`${BOOT_CONFIG}: not valid JSON: ${(e as Error).message}`];
  }
  let cfg: Config;
  try {
    cfg = parseConfig(raw, path.join(etcDir, BOOT_CONFIG), true);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  const problems: string[] = [];
  const refs = { passwordFile: cfg.mqtt.passwordFile, caFile: cfg.mqtt.caFile, certFile: cfg.mqtt.certFile, keyFile: cfg.mqtt.keyFile };
  for (const [key, file] of Object.entries(refs)) {
    if (file === undefined) continue;
    const willArrive = path.dirname(file) === path.resolve(etcDir) && importedSecrets.has(path.basename(file));
    if (!willArrive && !existsSync(file)) {
      const bootName = Object.entries(BOOT_SECRETS).find(([, e]) => e === path.basename(file))?.[0];
      problems.push(`mqtt.${key}: ${file} does not exist${bootName ? ` (drop ${bootName} beside ${BOOT_CONFIG})` : ''}`);
    }
  }
  return problems;
}

/**
 * The dropped text for the `.rejected` copy, with anything that may be secret blanked: values of
 * password/secret/token/private-key-like keys and any PEM block, wherever they are (a rejected
 * file may have any shape). Paths (`*File`) and public assignment keys are kept.
 */
export function redact(text: string): string {
  const REMOVED = '[removed: never leave secrets on the boot partition]';
  const secretKey = (k: string): boolean => /pass|secret|token|private|^key$|^cert$|^ca$|credential/i.test(k) && !/File$/.test(k);
  const walk = (v: unknown, key: string): unknown => {
    if (typeof v === 'string') return secretKey(key) || /-----BEGIN/.test(v) ? REMOVED : v;
    if (Array.isArray(v)) return v.map((x) => walk(x, key));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, k)]));
    return v;
  };
  try {
    return JSON.stringify(walk(JSON.parse(text), ''), null, 2) + '\n';
  } catch {
    return text
      .replace(/("[^"]*(?:pass|secret|token|private|key|cert|credential)[^"]*"\s*:\s*)"(?:[^"\\]|\\.)*"/gi, `$1"${REMOVED}"`)
      .replace(/-----BEGIN[\s\S]*?(-----END[^-]*-----|$)/g, REMOVED);
  }
}

/** uid/gid of `name` from a passwd file; undefined when the user does not exist. */
export function lookupUser(name: string, passwdFile = '/etc/passwd'): Owner | undefined {
  let text: string;
  try {
    text = readFileSync(passwdFile, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f.length >= 4) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  return undefined;
}

function ourFiles(dir: string): string[] {
  const names = [BOOT_CONFIG, ...Object.keys(BOOT_SECRETS)];
  return names.filter((n) => existsSync(path.join(dir, n)));
}

function readIssuedAt(etcDir: string): string | undefined {
  try {
    return readFileSync(path.join(etcDir, ISSUED_FILE), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

function readPrevious(etcDir: string): Config | undefined {
  try {
    return parseConfig(JSON.parse(readFileSync(path.join(etcDir, BOOT_CONFIG), 'utf8')), path.join(etcDir, BOOT_CONFIG), true);
  } catch {
    return undefined;
  }
}

async function place(file: string, data: string | Buffer, mode: number, owner: Owner | undefined): Promise<string> {
  await writeFileAtomic(file, data, mode);
  if (owner) await chown(file, owner.uid, owner.gid);
  return file;
}

async function removeAll(dir: string, names: string[]): Promise<void> {
  const have = new Set(await readdir(dir));
  for (const n of names) if (have.has(n)) await unlink(path.join(dir, n));
  await fsyncDir(dir);
}
