import { execFile, execFileSync } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './ports.js';

const run = promisify(execFile);

export interface Postgres {
  port: number;
  /** postgres://postgres@127.0.0.1:PORT/DB (trust auth on 127.0.0.1 only). */
  url(db?: string): string;
  /** A fresh, empty database in this cluster; its URL. Tests in one file share a cluster, never a database. */
  createDb(name: string): Promise<string>;
  /** pg_ctl stop -m fast. Idempotent. */
  stop(): Promise<void>;
  /** Stop and remove the cluster's temp dir (done by the teardown when `t` was given). */
  dispose(): Promise<void>;
}

interface Teardownable {
  teardown(fn: () => unknown): void;
}

/** Debian's server binaries: /usr/lib/postgresql/<major>/bin, the highest major installed. */
export function postgresBinDir(): string {
  const base = '/usr/lib/postgresql';
  const majors = existsSync(base) ? readdirSync(base).filter((v) => existsSync(path.join(base, v, 'bin', 'initdb'))) : [];
  majors.sort((a, b) => Number(b) - Number(a));
  if (majors[0] === undefined) throw new Error(`no PostgreSQL server in ${base}/*/bin (apt-get install postgresql; scripts/ensure-deps.sh test does it)`);
  return path.join(base, majors[0], 'bin');
}

/**
 * postgres refuses to run as root ("root" execution of the PostgreSQL server is not permitted), and
 * CI runs the suite as root: then the cluster belongs to the `postgres` system user (Debian's package
 * makes it), or to nobody, and its commands run through setpriv. Otherwise, as ourselves.
 */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (const name of ['postgres', 'nobody']) {
    try {
      const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
      return { uid, gid };
    } catch {
      // no such user: try the next
    }
  }
  throw new Error('running as root and neither a postgres nor a nobody user exists to own the test cluster');
}

/**
 * A throwaway PostgreSQL cluster in a temp dir: initdb (C locale, UTF-8, trust), then pg_ctl start on
 * a free 127.0.0.1 port with its unix socket in the same dir (not /var/run/postgresql), stopped and
 * removed with the test. `fsync: false` (the default here) spares the shared disk: the tests kill
 * the ingest, never the database server or the machine, so the server's own durability is not what
 * they check; the bench keeps fsync on.
 */
export async function startPostgres(t?: Teardownable, opts: { fsync?: boolean } = {}): Promise<Postgres> {
  const bin = postgresBinDir();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pg-'));
  const data = path.join(dir, 'data');
  const log = path.join(dir, 'server.log');
  const owner = serverUser();
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const as = async (cmd: string, args: string[]): Promise<string> => {
    const [file, argv] = owner
      ? ['setpriv', [`--reuid=${owner.uid}`, `--regid=${owner.gid}`, '--clear-groups', '--', path.join(bin, cmd), ...args]]
      : [path.join(bin, cmd), args];
    try {
      return (await run(file, argv, { cwd: dir, env: { ...process.env, LC_ALL: 'C' } })).stdout;
    } catch (e) {
      const server = existsSync(log) ? readFileSync(log, 'utf8').slice(-2000) : '';
      throw new Error(`${cmd} ${args.join(' ')} failed: ${(e as { stderr?: string }).stderr ?? (e as Error).message}${server ? `\nserver log: ${server}` : ''}`);
    }
  };
  let started = false;
  let port = 0;
  const stop = async (): Promise<void> => {
    if (!started) return;
    started = false;
    await as('pg_ctl', ['stop', '-D', data, '-m', 'fast', '-w', '-t', '60']);
  };
  const dispose = async (): Promise<void> => {
    await stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    mkdirSync(data);
    if (owner) chownSync(data, owner.uid, owner.gid);
    await as('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-locale', '-N']);
    for (let attempt = 0; ; attempt++) {
      port = await freePort();
      // Later lines win in postgresql.conf, so a retry just appends its port.
      appendFileSync(data + '/postgresql.conf', [
        `port = ${port}`, "listen_addresses = '127.0.0.1'", `unix_socket_directories = '${dir}'`,
        `fsync = ${opts.fsync ? 'on' : 'off'}`, 'shared_buffers = 32MB', 'max_connections = 60', '',
      ].join('\n'));
      try {
        await as('pg_ctl', ['start', '-D', data, '-l', log, '-w', '-t', '60']);
        started = true;
        break;
      } catch (e) {
        if (attempt >= 4) throw e;
      }
    }
  } catch (e) {
    await dispose();
    throw e;
  }
  const url = (db = 'postgres'): string => `postgres://postgres@127.0.0.1:${port}/${db}`;
  const pgInstance: Postgres = {
    port,
    url,
    createDb: async (name) => {
      const c = new pg.Client({ connectionString: url() });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
      } finally {
        await c.end();
      }
      return url(name);
    },
    stop,
    dispose,
  };
  t?.teardown(() => dispose());
  return pgInstance;
}
