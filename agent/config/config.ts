import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { z } from 'zod';
import { readKeyRing, type KeyRing } from '../protocol/envelope.js';
import { formatIssues, idSchema } from '../protocol/schemas.js';

// PROTOCOL §2. One schema, validated once at start-up; every problem is reported together.

function validTimezone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/**
 * The §9 trusted keys, read here so that a bad one is reported with every other config problem,
 * by every command. `assignmentKeys`: full-scope operator keys. `rootKeys`: offline keys that
 * sign the key set on {p}/keys and nothing else. A key id names one key across both lists.
 */
const securitySchema = z
  .strictObject({
    assignmentKeys: z.array(z.string()).default([]),
    rootKeys: z.array(z.string()).default([]),
  })
  .transform((s, ctx): { assignmentKeys: KeyRing | undefined; rootKeys: KeyRing | undefined } => {
    const ops = readKeyRing(s.assignmentKeys);
    const roots = readKeyRing(s.rootKeys);
    for (const [list, r] of [['assignmentKeys', ops], ['rootKeys', roots]] as const) {
      for (const p of r.problems) ctx.issues.push({ code: 'custom', path: [list, p.index], message: p.problem, input: s[list][p.index] });
    }
    // The same id in both lists would make a root key an operator key or the other way round.
    const opIds = [...(ops.ring?.keys() ?? [])];
    [...(roots.ring?.keys() ?? [])].forEach((id) => {
      if (!opIds.includes(id)) return;
      const index = s.rootKeys.findIndex((e) => readKeyRing([e]).ring?.has(id));
      ctx.issues.push({ code: 'custom', path: ['rootKeys', index], message: `duplicate key id "${id}": also in security.assignmentKeys`, input: s.rootKeys[index] });
    });
    return { assignmentKeys: ops.ring, rootKeys: roots.ring };
  });

/** Where `file://` media may be read from (issue 10): places meant for media, not the whole box. */
export const DEFAULT_FILE_ROOTS = ['/srv/signage', '/srv/house', '/media', '{dataDir}/media-in'];

const fileRootSchema = z
  .string()
  .refine((r) => path.isAbsolute(r) || r.startsWith('{dataDir}/'), 'must be an absolute directory (or start with {dataDir}/)');

/** A host name, an IP address, or an IP/prefix. */
function validHostEntry(h: string): boolean {
  const [ip, bits, ...rest] = h.split('/');
  const family = isIP(ip ?? '');
  if (bits !== undefined) return rest.length === 0 && family !== 0 && /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
  return family !== 0 || /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?$/.test(h);
}

const mediaDefaults = { cacheMaxMB: 2048, minFreeMB: 256, fileRoots: DEFAULT_FILE_ROOTS, allowHosts: [] as string[] };

const configSchema = z.strictObject({
  deviceId: idSchema,
  groups: z.array(idSchema).max(64).default(['all']),
  timezone: z.string().refine(validTimezone, 'must be an IANA timezone such as Asia/Ho_Chi_Minh').default('Asia/Ho_Chi_Minh'),
  dataDir: z.string().min(1).optional(),
  heartbeatSec: z.number().int().min(5).max(3600).default(30),
  mqtt: z.strictObject({
    url: z.string().refine((u) => /^(mqtts?|wss?|tcp|ssl):\/\/[^/]+/.test(u), 'must be an mqtt://, mqtts://, ws:// or wss:// URL'),
    username: z.string().max(256).optional(),
    password: z.string().max(1024).optional(),
    passwordFile: z.string().optional(),
    caFile: z.string().optional(),
    certFile: z.string().optional(),
    keyFile: z.string().optional(),
    topicPrefix: z.string().regex(/^[A-Za-z0-9._/-]{1,64}$/, 'must be letters, digits, . _ - / (no wildcards)').default('signage'),
    keepaliveSec: z.number().int().min(5).max(600).default(30),
    sessionExpirySec: z.number().int().min(0).max(30 * 86400).default(7 * 86400),
    reconnectMinMs: z.number().int().min(100).max(60_000).default(1000),
    reconnectMaxMs: z.number().int().min(1000).max(3_600_000).default(60_000),
  }),
  player: z
    .strictObject({
      mpvPath: z.string().min(1).default('mpv'),
      args: z.array(z.string()).default([]),
    })
    .default({ mpvPath: 'mpv', args: [] }),
  media: z
    .strictObject({
      cacheMaxMB: z.number().int().min(16).max(1_000_000).default(2048),
      /** Free space on the data filesystem a download may not eat into. */
      minFreeMB: z.number().int().min(0).max(1_000_000).default(256),
      fileRoots: z.array(fileRootSchema).max(64).default(DEFAULT_FILE_ROOTS),
      /** Hosts that may resolve to loopback/private/link-local addresses (a LAN media server). */
      allowHosts: z.array(z.string().refine(validHostEntry, 'must be a host name, an IP address or an IP/prefix')).max(256).default([]),
    })
    .default(mediaDefaults),
  // prefault, not default: the missing section is parsed like `{}`, so its keys go through the transform.
  security: securitySchema.prefault({}),
  history: z
    .strictObject({
      /** Local days of play rows kept on the box; older ones are pruned nightly. */
      keepDays: z.number().int().min(7).max(3650).default(400),
    })
    .default({ keepDays: 400 }),
  logs: z
    .strictObject({
      /** Recent log lines kept in memory for the `logs` command (issue 13); 0 keeps none. Never written to disk. */
      ringKB: z.number().int().min(0).max(65_536).default(4096),
    })
    .default({ ringKB: 4096 }),
  // Issue 13: over-the-air agent updates (agent/update/, docs/updates.md).
  update: z
    .strictObject({
      /** releases/{version}, current, previous (provisioning/install.sh makes it, owned by the service user). */
      releasesDir: z.string().min(1).default('/opt/signage-agent/releases'),
      /** A new release that has not proved itself healthy this long after the switch is rolled back. */
      deadlineSec: z.number().int().min(10).max(86_400).default(600),
      /** Connected and playing (or idle by plan) this long without a break: healthy. */
      healthyAfterSec: z.number().int().min(1).max(3600).default(60),
      /** Starts of a pending release without proving itself before the gate calls it a crash loop. */
      maxStarts: z.number().int().min(1).max(100).default(3),
      /** The switch waits for a gap this long before the next spot (the restart must fit in it). */
      minGapSec: z.number().int().min(1).max(3600).default(20),
    })
    .default({ releasesDir: '/opt/signage-agent/releases', deadlineSec: 600, healthyAfterSec: 60, maxStarts: 3, minGapSec: 20 }),
  outbox: z
    .strictObject({
      /** Default: 30 days of a busy screen's events (~200 plays + events a day). */
      maxEvents: z.number().int().min(100).max(10_000_000).default(30 * 24 * 300),
      inFlight: z.number().int().min(1).max(1000).default(100),
    })
    .default({ maxEvents: 30 * 24 * 300, inFlight: 100 }),
  // §11: how the display schedule reaches the screen (the schedule itself comes in the assignment).
  display: z
    .strictObject({
      /** `mpv` (a video filter, default), `mpv-gpu` (mpv's renderer), or `command` (the LED sender's own control). */
      brightnessDriver: z.enum(['mpv', 'mpv-gpu', 'command']).default('mpv'),
      /** For `command`: the program and its arguments, `{pct}` replaced by the level 0..100. */
      brightnessCommand: z.array(z.string().min(1)).min(1).max(32).optional(),
      /** `auto`: HDMI-CEC standby when a /dev/cec* node exists; `off`: black output only. */
      cec: z.enum(['auto', 'off']).default('auto'),
      /** The CEC node to use (default: the first /dev/cec*). */
      cecDevice: z.string().regex(/^\/dev\/cec\d+$/, 'must be /dev/cecN').optional(),
    })
    .refine((d) => d.brightnessDriver !== 'command' || (d.brightnessCommand !== undefined && d.brightnessCommand.some((a) => a.includes('{pct}'))), {
      message: 'brightnessDriver "command" needs brightnessCommand, with {pct} in one of its arguments',
      path: ['brightnessCommand'],
    })
    .default({ brightnessDriver: 'mpv', cec: 'auto' }),
});

export type ConfigInput = z.input<typeof configSchema>;
export type Config = Omit<z.output<typeof configSchema>, 'dataDir'> & {
  dataDir: string;
  /** Absolute path of the file it was read from (for relative paths and messages). */
  configPath: string;
};

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
  }
}

/**
 * Validates a parsed config document; throws ConfigError listing every problem. `isRoot` (the
 * caller runs as root; only main.ts and the provisioning tools know) picks the installed data
 * directory for a config under /etc; without it the data stays beside the config.
 */
export function parseConfig(raw: unknown, configPath: string, isRoot = false): Config {
  const r = configSchema.safeParse(raw);
  if (!r.success) throw new ConfigError(formatIssues(r.error));
  const dir = path.dirname(path.resolve(configPath));
  const c = r.data;
  const resolve = (p: string | undefined): string | undefined => (p === undefined ? p : path.resolve(dir, p));
  // Root-installed boxes keep data in /var/lib; a checkout or a user run keeps it beside the config.
  const installed = isRoot && dir.startsWith('/etc/');
  const dataDir = resolve(c.dataDir) ?? (installed ? '/var/lib/signage-agent' : path.join(dir, 'var'));
  return {
    ...c,
    dataDir,
    configPath: path.resolve(configPath),
    media: { ...c.media, fileRoots: c.media.fileRoots.map((r) => path.resolve(r.replace(/^\{dataDir\}\//, `${dataDir}/`))) },
    mqtt: {
      ...c.mqtt,
      passwordFile: resolve(c.mqtt.passwordFile),
      caFile: resolve(c.mqtt.caFile),
      certFile: resolve(c.mqtt.certFile),
      keyFile: resolve(c.mqtt.keyFile),
    },
  };
}

/** Reads and validates a config file; throws ConfigError with every problem. */
export function loadConfig(file: string, isRoot: boolean): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError([`config: cannot read ${file}: ${(e as Error).message}`]);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError([`config: ${file} is not valid JSON: ${(e as Error).message}`]);
  }
  return parseConfig(raw, file, isRoot);
}
