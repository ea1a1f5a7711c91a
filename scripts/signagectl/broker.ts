import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { writeFileAtomic } from '../../agent/fsx/atomic.js';
import { addDeviceCommands, addOperatorCommands, initCommands, revokeDeviceCommands, sendDynsec, type DynsecAdmin } from './broker-dynsec.js';
import { BrokerFiles, checkName, type Registry, type Role } from './broker-files.js';
import { Pki } from './broker-pki.js';
import { CliError, type Io } from './conn.js';

const run = promisify(execFile);

export const BROKER_HELP = `Usage:
  signagectl broker init-ca        [--server-name HOST,...] [--prefix signage] [--group mosquitto]
  signagectl broker add-device     --id ID [--groups a,b] [--cert]
  signagectl broker revoke-device  --id ID
  signagectl broker add-operator   --name NAME --role noc|ingest
  signagectl broker gen-crl
Every subcommand: [--dir /etc/mosquitto/signage] [--pid PID | --pid-file FILE | --no-reload]

With the dynamic-security plugin (provisioning/broker/mosquitto-dynsec.conf) instead of files:
  signagectl broker dynsec-init | add-device | revoke-device | add-operator  DYNSEC
DYNSEC: --dynsec URL --admin-user NAME --admin-password-file FILE [--ca FILE] [--prefix signage]
(password devices only; the broker applies each change at once, no reload; issued/ID/ is still
written under --dir).

The broker's credentials and ACL for provisioning/broker/mosquitto.conf. add-device issues the
device a random password (mosquitto_passwd) or, with --cert, a client certificate with CN=ID from
the CA made by init-ca; it writes them to DIR/issued/ID/ (give that folder to prepare-card with
--issued) and regenerates the ACL with the device's group reads. Adding an existing device
replaces its credentials (the old password stops working, old certificates are revoked).
revoke-device removes one device's password, puts its certificates in the CRL and denies it every
topic; the other devices are untouched. After a change, mosquitto is reloaded with SIGHUP
(--pid, --pid-file, or else \`systemctl reload mosquitto\`).`;

function provisioning(name: string): string {
  for (let d = import.meta.dirname; ; d = path.dirname(d)) {
    const f = path.join(d, 'provisioning', 'broker', name);
    if (existsSync(f)) return f;
    if (path.dirname(d) === d) throw new Error(`cannot find provisioning/broker/${name} beside this script`);
  }
}

export async function brokerCommand(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      dir: { type: 'string', default: '/etc/mosquitto/signage' },
      id: { type: 'string' }, name: { type: 'string' }, role: { type: 'string' },
      groups: { type: 'string' }, cert: { type: 'boolean' },
      'server-name': { type: 'string' }, prefix: { type: 'string' }, group: { type: 'string', default: 'mosquitto' },
      dynsec: { type: 'string' }, 'admin-user': { type: 'string' }, 'admin-password-file': { type: 'string' }, ca: { type: 'string' },
      pid: { type: 'string' }, 'pid-file': { type: 'string' }, 'no-reload': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [sub, ...extra] = positionals;
  if (extra.length > 0) throw new CliError(`unexpected argument ${extra[0]} (see signagectl broker --help)`);
  if (values.help || sub === undefined) {
    io.out(BROKER_HELP);
    return values.help ? 0 : 2;
  }
  const files = new BrokerFiles(path.resolve(values.dir));
  if (values.dynsec !== undefined) {
    const admin: DynsecAdmin = { url: values.dynsec, username: need(values['admin-user'], '--admin-user'), passwordFile: need(values['admin-password-file'], '--admin-password-file'), caFile: values.ca };
    return dynsecCommand(sub, values, admin, files, io);
  }
  const pki = new Pki(files.dir, provisioning('ca.cnf'));
  const patterns = provisioning('acl-patterns.conf');
  const commit = async (reg: Registry): Promise<void> => {
    await files.save(reg);
    await files.writeAcl(reg, patterns);
    await reload(values, io);
  };

  switch (sub) {
    case 'init-ca': {
      mkdirSync(files.dir, { recursive: true, mode: 0o750 });
      const group = brokerGroup(values.group);
      if (group !== undefined) {
        // mosquitto 2.0 reads these files (again on every SIGHUP) as its own user: the folder
        // belongs to its group, and setgid makes every file written later inherit that group,
        // atomic replacements included. What must stay root's is 0600/0700 (CA key, issued/).
        chownSync(files.dir, 0, group);
        chmodSync(files.dir, 0o2750);
      }
      const reg: Registry = existsSync(files.registryFile) ? files.load() : { prefix: checkName('--prefix', values.prefix ?? 'signage'), devices: {}, operators: {} };
      const names = (values['server-name'] ?? 'localhost').split(',').map((s) => s.trim()).filter(Boolean);
      await pki.init('signage device CA', names);
      if (!existsSync(files.passwdFile)) await writeFileAtomic(files.passwdFile, '', 0o640);
      await commit(reg);
      io.out(`CA ${pki.caCert}, CRL ${pki.crl}, server certificate ${path.join(files.dir, 'server.crt')} (${names.join(', ')})`);
      return 0;
    }
    case 'add-device': {
      const id = checkName('--id', need(values.id, '--id'));
      const reg = files.load();
      if (id in reg.operators) throw new CliError(`--id ${id}: that name is an operator`);
      const groups = (values.groups ?? '').split(',').map((g) => g.trim()).filter(Boolean).map((g) => checkName('group', g));
      const out = files.issuedDir(id);
      rmSync(out, { recursive: true, force: true });
      mkdirSync(out, { recursive: true, mode: 0o700 });
      if (!pki.exists()) throw new CliError('no CA: run signagectl broker init-ca first (devices need ca.crt to check the broker)');
      copyFileSync(pki.caCert, path.join(out, 'ca.crt'));
      // Replacing credentials: whatever the device held before stops working.
      const revoked = await pki.revokeAll(id);
      let what: string;
      if (values.cert) {
        await files.setPassword(id, undefined).catch(() => undefined);
        const serial = await pki.issue(id, 'client_ext', path.join(out, 'client'));
        what = `certificate serial ${serial} (client.crt, client.key)`;
      } else {
        const password = randomBytes(24).toString('base64url');
        await files.setPassword(id, password);
        await writeFileAtomic(path.join(out, 'mqtt.pass'), password + '\n', 0o600);
        what = 'password (mqtt.pass)';
      }
      reg.devices[id] = { groups, auth: values.cert ? 'cert' : 'password' };
      await commit(reg);
      io.out(`${id}: ${what}, groups ${groups.join(',') || '(none)'}${revoked.length ? `; revoked ${revoked.join(',')}` : ''}; card files in ${out}`);
      return 0;
    }
    case 'revoke-device': {
      const id = checkName('--id', need(values.id, '--id'));
      const reg = files.load();
      const d = reg.devices[id];
      if (!d) throw new CliError(`--id ${id}: no such device in ${files.registryFile}`);
      await files.setPassword(id, undefined).catch(() => undefined);
      const revoked = pki.exists() ? await pki.revokeAll(id) : [];
      d.revoked = true;
      rmSync(files.issuedDir(id), { recursive: true, force: true });
      await commit(reg);
      io.out(`${id}: revoked (password removed${revoked.length ? `, certificates ${revoked.join(',')} in the CRL` : ''}, every topic denied)`);
      return 0;
    }
    case 'add-operator': {
      const name = checkName('--name', need(values.name, '--name'));
      const role = need(values.role, '--role');
      if (role !== 'noc' && role !== 'ingest') throw new CliError('--role: noc or ingest');
      const reg = files.load();
      if (name in reg.devices) throw new CliError(`--name ${name}: that name is a device`);
      const password = randomBytes(24).toString('base64url');
      await files.setPassword(name, password);
      const out = files.issuedDir(name);
      mkdirSync(out, { recursive: true, mode: 0o700 });
      await writeFileAtomic(path.join(out, 'mqtt.pass'), password + '\n', 0o600);
      reg.operators[name] = { role: role as Role };
      await commit(reg);
      io.out(`${name}: ${role} password in ${path.join(out, 'mqtt.pass')}`);
      return 0;
    }
    case 'gen-crl':
      await pki.genCrl();
      await reload(values, io);
      io.out(`rewrote ${pki.crl}`);
      return 0;
    default:
      throw new CliError(`unknown subcommand "${sub}" (see signagectl broker --help)`);
  }
}

async function dynsecCommand(
  sub: string,
  v: { id?: string | undefined; name?: string | undefined; role?: string | undefined; groups?: string | undefined; prefix?: string | undefined; ca?: string | undefined; cert?: boolean | undefined },
  admin: DynsecAdmin,
  files: BrokerFiles,
  io: Io,
): Promise<number> {
  const prefix = checkName('--prefix', v.prefix ?? 'signage');
  const issue = async (name: string): Promise<string> => {
    const out = files.issuedDir(name);
    rmSync(out, { recursive: true, force: true });
    mkdirSync(out, { recursive: true, mode: 0o700 });
    if (v.ca !== undefined) copyFileSync(v.ca, path.join(out, 'ca.crt'));
    const password = randomBytes(24).toString('base64url');
    await writeFileAtomic(path.join(out, 'mqtt.pass'), password + '\n', 0o600);
    return password;
  };
  switch (sub) {
    case 'dynsec-init':
      await sendDynsec(admin, initCommands(prefix));
      io.out(`dynsec: default access denied; roles signage-device, signage-noc, signage-ingest (prefix ${prefix})`);
      return 0;
    case 'add-device': {
      if (v.cert) throw new CliError('--cert: with dynsec, devices use passwords (certificates: the file-based setup and its CRL)');
      const id = checkName('--id', need(v.id, '--id'));
      const groups = (v.groups ?? '').split(',').map((g) => g.trim()).filter(Boolean).map((g) => checkName('group', g));
      await sendDynsec(admin, addDeviceCommands(prefix, id, groups, await issue(id)));
      io.out(`${id}: dynsec client (client id signage-${id}), groups ${groups.join(',') || '(none)'}; card files in ${files.issuedDir(id)}`);
      return 0;
    }
    case 'revoke-device': {
      const id = checkName('--id', need(v.id, '--id'));
      await sendDynsec(admin, revokeDeviceCommands(id));
      rmSync(files.issuedDir(id), { recursive: true, force: true });
      io.out(`${id}: dynsec client deleted (disconnected now, refused from now on)`);
      return 0;
    }
    case 'add-operator': {
      const name = checkName('--name', need(v.name, '--name'));
      const role = need(v.role, '--role');
      if (role !== 'noc' && role !== 'ingest') throw new CliError('--role: noc or ingest');
      await sendDynsec(admin, addOperatorCommands(name, role, await issue(name)));
      io.out(`${name}: dynsec ${role} client; password in ${path.join(files.issuedDir(name), 'mqtt.pass')}`);
      return 0;
    }
    default:
      throw new CliError(`"${sub}" is not a dynsec subcommand (dynsec-init, add-device, revoke-device, add-operator)`);
  }
}

/** The broker's group id when we can hand the folder to it (root, and the group exists). */
function brokerGroup(name: string): number | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync('/etc/group', 'utf8').split('\n').find((l) => l.startsWith(`${name}:`));
  const gid = Number(line?.split(':')[2]);
  return Number.isInteger(gid) ? gid : undefined;
}

function need(v: string | undefined, flag: string): string {
  if (v === undefined || v === '') throw new CliError(`${flag} is required`);
  return v;
}

/** SIGHUP: mosquitto rereads the password file, the ACL and the CRL; connected clients stay. */
async function reload(v: { pid?: string | undefined; 'pid-file'?: string | undefined; 'no-reload'?: boolean | undefined }, io: Io): Promise<void> {
  if (v['no-reload']) return;
  const pidText = v.pid ?? (v['pid-file'] !== undefined ? readFileSync(v['pid-file'], 'utf8') : undefined);
  if (pidText !== undefined) {
    const pid = Number(pidText.trim());
    if (!Number.isInteger(pid) || pid <= 1) throw new CliError(`not a process id: ${pidText.trim()}`);
    process.kill(pid, 'SIGHUP');
    return;
  }
  await run('systemctl', ['reload', 'mosquitto']).catch((e: Error) => {
    throw new CliError(`files written, but reloading mosquitto failed (${e.message.split('\n')[0]}): reload it by hand`, 1);
  });
  io.out('reloaded mosquitto');
}
