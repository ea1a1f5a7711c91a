import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { writeFileAtomic } from '../../agent/fsx/atomic.js';

// The small CA, with openssl's own `ca` command (its index.txt is the record of what was issued
// and revoked): EC P-256 keys, client certificates whose CN is the device id, one CRL.

const run = promisify(execFile);

export class Pki {
  readonly caDir: string;

  constructor(readonly dir: string, private readonly cnfTemplate: string) {
    this.caDir = path.join(dir, 'ca');
  }

  private get cnf(): string { return path.join(this.caDir, 'ca.cnf'); }
  get caCert(): string { return path.join(this.caDir, 'ca.crt'); }
  get crl(): string { return path.join(this.caDir, 'crl.pem'); }

  private async ssl(args: string[], san = 'DNS:localhost'): Promise<void> {
    await run('openssl', args, { env: { ...process.env, SIGNAGE_CA_DIR: this.caDir, SIGNAGE_SAN: san } }).catch((e: { stderr?: string; message: string }) => {
      throw new Error(`openssl ${args[0]}: ${(e.stderr ?? e.message).trim()}`);
    });
  }

  exists(): boolean {
    return existsSync(this.caCert);
  }

  /** A new CA (refuses to overwrite one), its empty CRL, and the broker's server certificate. */
  async init(cn: string, serverNames: string[]): Promise<void> {
    if (this.exists()) throw new Error(`${this.caCert} exists: a second init would orphan every issued certificate`);
    // 0750: the broker reads ca.crt and crl.pem here; ca.key itself is 0600.
    mkdirSync(path.join(this.caDir, 'newcerts'), { recursive: true, mode: 0o750 });
    copyFileSync(this.cnfTemplate, this.cnf);
    writeFileSync(path.join(this.caDir, 'index.txt'), '');
    writeFileSync(path.join(this.caDir, 'serial'), '1000\n');
    writeFileSync(path.join(this.caDir, 'crlnumber'), '1000\n');
    await this.ssl(['req', '-config', this.cnf, '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-days', '3650', '-subj', `/CN=${cn}`, '-extensions', 'ca_ext', '-keyout', path.join(this.caDir, 'ca.key'), '-out', this.caCert]);
    await this.genCrl();
    const san = serverNames.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
    // A CN with a space: no device id can collide with it (revokeAll goes by CN).
    await this.issue('signage broker', 'server_ext', path.join(this.dir, 'server'), san);
    // mosquitto 2.0 loads its key after dropping to its own user: group-readable.
    chmodSync(path.join(this.dir, 'server.key'), 0o640);
    chmodSync(path.join(this.caDir, 'ca.key'), 0o600);
  }

  /** Issues `cn` a key and certificate as OUT.key / OUT.crt; returns the certificate's serial. */
  async issue(cn: string, ext: 'client_ext' | 'server_ext', out: string, san?: string): Promise<string> {
    const csr = `${out}.csr`;
    try {
      await this.ssl(['req', '-config', this.cnf, '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-subj', `/CN=${cn}`, '-keyout', `${out}.key`, '-out', csr]);
      await this.ssl(['ca', '-batch', '-config', this.cnf, '-extensions', ext, '-notext', '-in', csr, '-out', `${out}.crt`], san);
    } finally {
      await rm(csr, { force: true });
    }
    const { stdout } = await run('openssl', ['x509', '-in', `${out}.crt`, '-noout', '-serial']);
    return stdout.trim().replace(/^serial=/, '');
  }

  /** Revokes every still-valid certificate issued to `cn` and rewrites the CRL. */
  async revokeAll(cn: string): Promise<string[]> {
    const serials = readFileSync(path.join(this.caDir, 'index.txt'), 'utf8').split('\n')
      .map((l) => l.split('\t'))
      .filter((f) => f[0] === 'V' && f[5] === `/CN=${cn}`)
      .map((f) => f[3]!);
    for (const s of serials) await this.ssl(['ca', '-config', this.cnf, '-revoke', path.join(this.caDir, 'newcerts', `${s}.pem`)]);
    await this.genCrl();
    return serials;
  }

  /** Rewrites the CRL (also to push its nextUpdate out: an expired CRL locks every device out). */
  async genCrl(): Promise<void> {
    const tmp = `${this.crl}.new`;
    await this.ssl(['ca', '-config', this.cnf, '-gencrl', '-out', tmp]);
    await writeFileAtomic(this.crl, readFileSync(tmp), 0o644);
    await rm(tmp, { force: true });
  }
}
