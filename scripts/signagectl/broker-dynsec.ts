import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import mqtt from 'mqtt';
import { deviceTopic, fleetTopic, GROUP_KINDS, groupTopic, TELEMETRY_KINDS, type DeviceKind } from '../../agent/protocol/topics.js';
import { CliError } from './conn.js';

// The same policy for mosquitto's dynamic-security plugin, driven over its control topic
// ($CONTROL/dynamic-security/v1, the API mosquitto_ctrl uses). Dynsec 2.0 has no %u in ACL
// topics (measured on 2.0.11: a `signage/device/%u/play` ACL matches nothing), so every device
// gets a role of its own topics; device groups are dynsec groups holding a read role; client
// ids are bound by dynsec itself (a client created with a clientid must connect with it).

export type DynsecCommand = Record<string, unknown> & { command: string };

const CONTROL = '$CONTROL/dynamic-security/v1';
/** What a device publishes: its telemetry and its command results. */
const DEVICE_WRITES: DeviceKind[] = [...TELEMETRY_KINDS, 'cmd/result'];

function acl(rolename: string, acltype: string, topic: string): DynsecCommand {
  return { command: 'addRoleACL', rolename, acltype, topic, allow: true, priority: 0 };
}

/** Read access is a subscription and a delivery; both are needed once the defaults deny. */
function reads(role: string, topic: string): DynsecCommand[] {
  return [acl(role, 'subscribePattern', topic), acl(role, 'publishClientReceive', topic)];
}

function writes(role: string, topic: string): DynsecCommand[] {
  return [acl(role, 'publishClientSend', topic)];
}

/** Deny by default (dynsec's own default lets every subscriber receive), and the shared roles. */
export function initCommands(p: string): DynsecCommand[] {
  return [
    { command: 'setDefaultACLAccess', acls: ['publishClientSend', 'publishClientReceive', 'subscribe', 'unsubscribe'].map((acltype) => ({ acltype, allow: acltype === 'unsubscribe' })) },
    { command: 'createRole', rolename: 'signage-device' },
    ...reads('signage-device', fleetTopic(p, 'fleet/alert')),
    ...reads('signage-device', fleetTopic(p, 'keys')),
    { command: 'createGroup', groupname: 'signage-devices' },
    { command: 'addGroupRole', groupname: 'signage-devices', rolename: 'signage-device' },
    { command: 'createRole', rolename: 'signage-noc' },
    ...[...GROUP_KINDS.map((k) => deviceTopic(p, '+', k)), deviceTopic(p, '+', 'cmd')].flatMap((t) => [...reads('signage-noc', t), ...writes('signage-noc', t)]),
    ...GROUP_KINDS.map((k) => groupTopic(p, '+', k)).flatMap((t) => [...reads('signage-noc', t), ...writes('signage-noc', t)]),
    ...[fleetTopic(p, 'fleet/alert'), fleetTopic(p, 'keys')].flatMap((t) => [...reads('signage-noc', t), ...writes('signage-noc', t)]),
    ...DEVICE_WRITES.flatMap((k) => reads('signage-noc', deviceTopic(p, '+', k))),
    { command: 'createRole', rolename: 'signage-ingest' },
    ...TELEMETRY_KINDS.flatMap((k) => reads('signage-ingest', deviceTopic(p, '+', k))),
  ];
}

/** A device (re)created: its old client deleted (which disconnects it), its own role, its groups. */
export function addDeviceCommands(p: string, id: string, groups: string[], password: string): DynsecCommand[] {
  const role = `device-${id}`;
  return [
    { command: 'deleteClient', username: id },
    { command: 'createRole', rolename: role },
    // Its own status too: the agent re-asserts its birth over a late Will of an old session.
    ...(['assignment', 'override', 'cmd', 'alert', 'status'] as const).flatMap((k) => reads(role, deviceTopic(p, id, k))),
    ...DEVICE_WRITES.flatMap((k) => writes(role, deviceTopic(p, id, k))),
    ...groups.flatMap((g) => [
      { command: 'createRole', rolename: `group-${g}` },
      ...GROUP_KINDS.flatMap((k) => reads(`group-${g}`, groupTopic(p, g, k))),
      { command: 'createGroup', groupname: `group-${g}` },
      { command: 'addGroupRole', groupname: `group-${g}`, rolename: `group-${g}` },
    ]),
    // The agent's client id (agent/link/connect-options.ts): nobody else may take it.
    { command: 'createClient', username: id, password, clientid: `signage-${id}`, roles: [{ rolename: role }],
      groups: [{ groupname: 'signage-devices' }, ...groups.map((g) => ({ groupname: `group-${g}` }))] },
  ];
}

export function revokeDeviceCommands(id: string): DynsecCommand[] {
  return [{ command: 'deleteClient', username: id }, { command: 'deleteRole', rolename: `device-${id}` }];
}

export function addOperatorCommands(name: string, role: 'noc' | 'ingest', password: string): DynsecCommand[] {
  return [{ command: 'deleteClient', username: name }, { command: 'createClient', username: name, password, roles: [{ rolename: `signage-${role}` }] }];
}

/** Re-running a step is fine: "already exists" and "not found" answers are not failures. */
const BENIGN = /already exists|not found|already in this role/i;

export interface DynsecAdmin {
  url: string;
  username: string;
  passwordFile: string;
  caFile?: string | undefined;
}

/** Sends the commands in one request and fails with every real error the plugin answered. */
export async function sendDynsec(admin: DynsecAdmin, commands: DynsecCommand[]): Promise<void> {
  const password = readFileSync(admin.passwordFile, 'utf8').replace(/\r?\n$/, '');
  const client = await mqtt.connectAsync(admin.url, {
    protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 10_000, username: admin.username, password,
    clientId: `signagectl-dynsec-${randomUUID()}`, ...(admin.caFile ? { ca: readFileSync(admin.caFile) } : {}),
  }).catch((e: Error) => {
    throw new CliError(`dynsec: cannot connect to ${admin.url} as ${admin.username}: ${e.message}`, 1);
  });
  try {
    const answer = new Promise<Array<{ command: string; error?: string }>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new CliError('dynsec: no answer on the control topic (is the plugin loaded?)', 1)), 10_000);
      client.on('message', (_t, payload) => {
        clearTimeout(timer);
        resolve((JSON.parse(payload.toString()) as { responses?: Array<{ command: string; error?: string }> }).responses ?? []);
      });
    });
    await client.subscribeAsync(`${CONTROL}/response`, { qos: 1 });
    await client.publishAsync(CONTROL, JSON.stringify({ commands }), { qos: 1 });
    const failed = (await answer).filter((r) => r.error !== undefined && !BENIGN.test(r.error));
    if (failed.length > 0) throw new CliError(`dynsec refused: ${failed.map((r) => `${r.command}: ${r.error}`).join('; ')}`, 1);
  } finally {
    await client.endAsync();
  }
}
