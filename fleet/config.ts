import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { idSchema as id } from '../agent/protocol/schemas.js';
import { isPostgresUrl } from './archive/open.js';

/** 127.0.0.0/8, ::1 and localhost: the addresses only this box can reach. */
export function isLoopback(bind: string): boolean {
  return bind === 'localhost' || bind === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bind);
}

// fleet.json: one schema, every problem reported at once (docs/fleet.md#config).

export const fleetConfigSchema = z.strictObject({
  /** The archive: a SQLite file (relative paths are read from the config file's folder) or a postgres:// URL. */
  db: z.string().min(1),
  mqtt: z.strictObject({
    url: z.string().regex(/^(mqtts?|wss?|tcp):\/\//, 'must be an mqtt://, mqtts://, ws:// or wss:// URL'),
    /** One per ingest process: the persistent session is the client id's. */
    clientId: id,
    username: z.string().optional(),
    passwordFile: z.string().optional(),
    topicPrefix: z.string().min(1).default('signage'),
    /** The shared-subscription group: every ingest process of one archive uses the same. */
    shareGroup: id.default('signage-fleet'),
    /** How long the broker keeps the session (and queues its messages) while the process is down. */
    sessionExpirySec: z.number().int().min(60).max(4_294_967_295).default(7 * 24 * 3600),
    keepaliveSec: z.number().int().min(5).max(600).default(30),
    /** MQTT 5 Receive Maximum: QoS 1 messages the broker may have in flight to us (bounds a batch). */
    receiveMaximum: z.number().int().min(1).max(65535).default(2000),
  }),
  batch: z
    .strictObject({
      maxRows: z.number().int().min(1).max(10_000).default(1000),
      maxDelayMs: z.number().int().min(0).max(5000).default(50),
    })
    .default({ maxRows: 1000, maxDelayMs: 50 }),
  /** The agent's status and heartbeat carry no groups, so the fleet names them: group → device ids. */
  groups: z.record(id, z.array(id)).default({}),
  /** The NOC page and its JSON API (docs/fleet.md#the-noc-page); omitted: no HTTP server. */
  http: z
    .strictObject({
      /** Loopback by default; any other address needs `tokenFile`. */
      bind: z.string().min(1).default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(8080),
      /** A file holding the access token (at least 16 characters): required off loopback. */
      tokenFile: z.string().optional(),
      /** A screen whose last heartbeat is older than this is shown stale. */
      staleAfterSec: z.number().int().min(5).max(86_400).default(120),
      /** How long the screenshot button waits for the screen's answer. */
      commandTimeoutSec: z.number().int().min(1).max(120).default(20),
      /**
       * An operator's Ed25519 private key (PEM, `signagectl keygen`): the page's commands go out as
       * §9 signed envelopes, which screens in signed mode require. Scope the key to `cmd` in the key set.
       */
      commandKeyFile: z.string().optional(),
      /** The key's id as the screens know it (default: the id in the .pub beside it, else derived from the key). */
      commandKeyId: id.optional(),
    })
    .superRefine((h, ctx) => {
      if (!isLoopback(h.bind) && !h.tokenFile) ctx.addIssue({ code: 'custom', path: ['tokenFile'], message: `required when bind (${h.bind}) is not a loopback address` });
    })
    .optional(),
  log: z.strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).default({ level: 'info' }),
});
export type FleetConfig = z.infer<typeof fleetConfigSchema>;
export type HttpConfig = NonNullable<FleetConfig['http']>;


export class FleetConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
  }
}

/** Parses a config document; paths are resolved against `baseDir`. */
export function parseFleetConfig(doc: unknown, baseDir: string): FleetConfig {
  const r = fleetConfigSchema.safeParse(doc);
  if (!r.success) throw new FleetConfigError(r.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`));
  const c = r.data;
  const abs = (p: string): string => path.resolve(baseDir, p);
  return {
    ...c,
    db: isPostgresUrl(c.db) ? c.db : abs(c.db),
    mqtt: { ...c.mqtt, ...(c.mqtt.passwordFile ? { passwordFile: abs(c.mqtt.passwordFile) } : {}) },
    ...(c.http ? { http: { ...c.http, ...(c.http.tokenFile ? { tokenFile: abs(c.http.tokenFile) } : {}), ...(c.http.commandKeyFile ? { commandKeyFile: abs(c.http.commandKeyFile) } : {}) } } : {}),
  };
}

export function loadFleetConfig(file: string): FleetConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new FleetConfigError([`cannot read ${file}: ${(e as Error).message}`]);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new FleetConfigError([`${file} is not JSON: ${(e as Error).message}`]);
  }
  return parseFleetConfig(doc, path.dirname(path.resolve(file)));
}
