import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, parseConfig } from '../../agent/config/config.js';
import { BOOT_CONFIG, BOOT_SECRETS } from '../../agent/provision/firstboot.js';
import { signFor, type Signer } from '../signagectl/sign.js';
import type { BootTarget } from './boot-target.js';

// What goes on a card (issue 5): the device's config (and MQTT secrets) at the top of the boot
// partition, where the agent's first-boot import picks them up on every boot; and, in signage/,
// the installer, the agent bundle, the pinned Node tarball and the hook that installs them on
// the first boot of a fresh Raspberry Pi OS image (cmdline.txt systemd.run=, like Imager's own
// firstrun.sh, which is chained when present).

export const CARD_DIR = 'signage';
const HOOK_FILES = ['firstrun.sh', 'setup.sh', 'signage-install.service'];

export interface CardInputs {
  /** The device's config document (validated here with the agent's own parser). */
  config: Record<string, unknown>;
  /** Boot-partition name (see BOOT_SECRETS) → local file. */
  secrets: Record<string, string>;
  bundle: string;
  nodeTarball: string;
  nodeSha256: string;
  /** Where the boot partition is mounted on the running Pi: Bookworm /boot/firmware. */
  bootMount: string;
  /** provisioning/ of this checkout or package (install.sh, card/). */
  provisioningDir: string;
  /**
   * Signs the config (§9 envelope, target device/ID, issuedAt = `now`): a box whose installed
   * config has keys takes a new boot-partition config only signed by one of them (issue 10).
   */
  signer?: Signer;
  now?: number;
}

export interface CardReport {
  deviceId: string;
  files: string[];
  warnings: string[];
}

/** Every problem of a device config, each naming its key; [] when good. */
export function configProblems(config: Record<string, unknown>, secrets: Record<string, string>): { problems: string[]; warnings: string[] } {
  const etc = '/etc/signage-agent';
  let cfg;
  try {
    cfg = parseConfig(config, path.join(etc, BOOT_CONFIG), true);
  } catch (e) {
    if (e instanceof ConfigError) return { problems: e.problems, warnings: [] };
    throw e;
  }
  const problems: string[] = [];
  const warnings: string[] = [];
  for (const b of Object.keys(secrets)) if (!(b in BOOT_SECRETS)) problems.push(`secret ${b}: unknown; use one of ${Object.keys(BOOT_SECRETS).join(', ')}`);
  for (const [b, f] of Object.entries(secrets)) if (!existsSync(f)) problems.push(`secret ${b}: ${f} does not exist`);
  const arriving = new Set(Object.keys(secrets).map((b) => path.join(etc, BOOT_SECRETS[b] ?? '?')));
  const refs = { passwordFile: cfg.mqtt.passwordFile, caFile: cfg.mqtt.caFile, certFile: cfg.mqtt.certFile, keyFile: cfg.mqtt.keyFile };
  for (const [k, f] of Object.entries(refs)) {
    if (f !== undefined && !arriving.has(f)) warnings.push(`mqtt.${k}: ${f} is not on the card; it must already exist on the device`);
  }
  return { problems, warnings };
}

export function sha256File(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** Finds the Node tarball's pinned sha256 in node.sha256 or SHASUMS256.txt beside it. */
export function pinnedSha(tarball: string): string | undefined {
  for (const pin of ['node.sha256', 'SHASUMS256.txt']) {
    const f = path.join(path.dirname(tarball), pin);
    if (!existsSync(f)) continue;
    for (const line of readFileSync(f, 'utf8').split('\n')) {
      const [h, n] = line.trim().split(/\s+/);
      if (h && n && n.replace(/^\*/, '') === path.basename(tarball)) return h.toLowerCase();
    }
  }
  return undefined;
}

export async function prepareCard(target: BootTarget, inp: CardInputs): Promise<CardReport> {
  const { problems, warnings } = configProblems(inp.config, inp.secrets);
  const deviceId = String(inp.config.deviceId ?? '?');
  if (problems.length > 0) throw new Error(`${deviceId}: config rejected:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  // install.sh on the card finds its inputs by these names.
  if (!/^node-v\d+\.\d+\.\d+-linux-(arm64|x64)\.tar\.(xz|gz)$/.test(path.basename(inp.nodeTarball))) {
    throw new Error(`${path.basename(inp.nodeTarball)}: expected an official Node tarball name, node-vX.Y.Z-linux-arm64.tar.xz (or -x64)`);
  }
  const bundleName = /^signage-agent-[A-Za-z0-9._-]+\.tgz$/.test(path.basename(inp.bundle)) ? path.basename(inp.bundle) : 'signage-agent-bundle.tgz';
  const got = sha256File(inp.nodeTarball);
  if (got !== inp.nodeSha256.toLowerCase()) throw new Error(`${path.basename(inp.nodeTarball)}: sha256 ${got} does not match the pinned ${inp.nodeSha256}`);
  if (!/^\/[A-Za-z0-9/._-]+$/.test(inp.bootMount)) throw new Error(`--boot-mount ${inp.bootMount}: an absolute path without spaces`);

  const cmdline = (await target.read('/cmdline.txt'))?.toString('utf8');
  if (cmdline === undefined) throw new Error(`${target.label}: no cmdline.txt: is this a Raspberry Pi OS boot partition?`);

  const files: string[] = [];
  const put = async (dest: string, data: Buffer | { file: string }): Promise<void> => {
    await target.put(dest, data);
    files.push(dest);
  };
  await target.mkdir(`/${CARD_DIR}`);
  await put(`/${CARD_DIR}/install.sh`, { file: path.join(inp.provisioningDir, 'install.sh') });
  for (const f of HOOK_FILES) await put(`/${CARD_DIR}/${f}`, { file: path.join(inp.provisioningDir, 'card', f) });
  await put(`/${CARD_DIR}/${bundleName}`, { file: inp.bundle });
  await put(`/${CARD_DIR}/${path.basename(inp.nodeTarball)}`, { file: inp.nodeTarball });
  await put(`/${CARD_DIR}/node.sha256`, Buffer.from(`${got}  ${path.basename(inp.nodeTarball)}\n`));
  for (const [b, f] of Object.entries(inp.secrets)) await put(`/${b}`, { file: f });
  // Last: the config is what the first-boot import looks for.
  const text = inp.signer ? signFor(inp.config, inp.signer, `device/${deviceId}`, inp.now ?? Date.now()).text : JSON.stringify(inp.config, null, 2);
  await put(`/${BOOT_CONFIG}`, Buffer.from(text + '\n'));

  const hook = `${inp.bootMount}/${CARD_DIR}/firstrun.sh`;
  const next = await hookedCmdline(target, cmdline, hook, files);
  if (next !== cmdline) await put('/cmdline.txt', Buffer.from(next));
  return { deviceId, files, warnings };
}

/**
 * cmdline.txt (one line) with our systemd.run= hook. Imager's customisation uses the same
 * mechanism; its script is moved beside ours and run by it first.
 */
async function hookedCmdline(target: BootTarget, cmdline: string, hook: string, files: string[]): Promise<string> {
  const line = cmdline.replace(/\r?\n[\s\S]*$/, '').trim();
  const existing = /(?:^|\s)systemd\.run=(\S+)/.exec(line)?.[1];
  if (existing === hook) return cmdline;
  if (existing !== undefined) {
    const name = existing.split('/').pop() ?? '';
    const script = await target.read(`/${name}`);
    if (!script) throw new Error(`cmdline.txt runs ${existing}, which is not on the boot partition: cannot chain it`);
    await target.put(`/${CARD_DIR}/imager-firstrun.sh`, script);
    files.push(`/${CARD_DIR}/imager-firstrun.sh`);
    await target.remove(`/${name}`);
  }
  const base = line.replace(/\s+systemd\.run(?:_success_action|_failure_action)?=\S+/g, '').replace(/\s+systemd\.unit=kernel-command-line\.target/g, '');
  return `${base} systemd.run=${hook} systemd.run_success_action=reboot systemd.unit=kernel-command-line.target\n`;
}

// --- the device's own broker credentials (signagectl broker add-device)

const ISSUED: Readonly<Record<string, { boot: string; key: 'passwordFile' | 'caFile' | 'certFile' | 'keyFile' }>> = {
  'mqtt.pass': { boot: 'signage-agent.mqtt.pass', key: 'passwordFile' },
  'ca.crt': { boot: 'signage-agent.ca.crt', key: 'caFile' },
  'client.crt': { boot: 'signage-agent.client.crt', key: 'certFile' },
  'client.key': { boot: 'signage-agent.client.key', key: 'keyFile' },
};

/**
 * Adds what the broker tool issued to this device (ISSUED_ROOT/deviceId/: a password or a client
 * certificate, and the CA) to its secrets, and points its config at them. The broker's ACL knows
 * the device by its id, so a password device's username must be its id.
 */
export function withIssued(row: DeviceRow, issuedRoot: string): DeviceRow {
  const id = String(row.config.deviceId ?? '');
  const dir = path.join(issuedRoot, id);
  if (!id || !existsSync(dir)) throw new Error(`${id || '?'}: no credentials in ${dir} (signagectl broker add-device --id ${id || 'ID'})`);
  const mqtt = { ...((row.config.mqtt as Record<string, unknown> | undefined) ?? {}) };
  const secrets = { ...row.secrets };
  for (const [name, { boot, key }] of Object.entries(ISSUED)) {
    if (!existsSync(path.join(dir, name))) continue;
    secrets[boot] = path.join(dir, name);
    mqtt[key] = path.join('/etc/signage-agent', BOOT_SECRETS[boot]!);
  }
  if (secrets['signage-agent.mqtt.pass'] === path.join(dir, 'mqtt.pass')) {
    if (mqtt.username !== undefined && mqtt.username !== id) throw new Error(`${id}: mqtt.username is ${String(mqtt.username)}, but the broker knows this device as ${id}`);
    mqtt.username = id;
    delete mqtt.password;
  }
  return { config: { ...row.config, mqtt }, secrets };
}

// --- bulk: one config per CSV row

/** RFC 4180-ish CSV: quoted fields, doubled quotes, CRLF or LF. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      field = '';
      if (row.some((f) => f !== '')) rows.push(row);
      row = [];
    } else field += ch;
  }
  row.push(field);
  if (row.some((f) => f !== '')) rows.push(row);
  return rows;
}

export interface DeviceRow {
  config: Record<string, unknown>;
  secrets: Record<string, string>;
}

/**
 * One device per row over a template config. Columns: `deviceId` (required), any config key as a
 * dotted path (`mqtt.username`, `timezone`, `heartbeatSec`), `groups` separated by `;`, and
 * `secret:<boot name>` (e.g. `secret:signage-agent.mqtt.pass`) naming a local file (relative to
 * the CSV). Empty cells keep the template's value.
 */
export function devicesFromCsv(text: string, template: Record<string, unknown>, csvDir: string): DeviceRow[] {
  const [header, ...rows] = parseCsv(text);
  if (!header) throw new Error('the CSV is empty');
  const cols = header.map((h) => h.trim());
  if (!cols.includes('deviceId')) throw new Error('the CSV needs a deviceId column');
  const seen = new Set<string>();
  return rows.map((cells, n) => {
    const config = structuredClone(template);
    const secrets: Record<string, string> = {};
    cols.forEach((col, i) => {
      const v = (cells[i] ?? '').trim();
      if (v === '') return;
      if (col.startsWith('secret:')) secrets[col.slice('secret:'.length)] = path.resolve(csvDir, v);
      else setPath(config, col, col === 'groups' ? v.split(';').map((g) => g.trim()).filter(Boolean) : /^-?\d+$/.test(v) && !/^mqtt\.(username|password)$/.test(col) && col !== 'deviceId' ? Number(v) : v);
    });
    const id = String(config.deviceId ?? '');
    if (seen.has(id)) throw new Error(`CSV line ${n + 2}: deviceId ${id} appears twice`);
    seen.add(id);
    return { config, secrets };
  });
}

function setPath(obj: Record<string, unknown>, dotted: string, value: unknown): void {
  const keys = dotted.split('.');
  let o = obj;
  for (const k of keys.slice(0, -1)) {
    if (!o[k] || typeof o[k] !== 'object') o[k] = {};
    o = o[k] as Record<string, unknown>;
  }
  o[keys.at(-1)!] = value;
}
