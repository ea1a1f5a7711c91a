import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type BootTarget, DirTarget, ImageTarget, fatPartitionOffset } from './boot-target.js';
import { type CardInputs, devicesFromCsv, pinnedSha, prepareCard, withIssued } from './card.js';
import { readSigner, type Signer } from '../signagectl/sign.js';

export const PREPARE_HELP = `Usage:
  prepare-card (--boot DIR | --image IMG [--out OUT.img]) --config signage-agent.json
               [--mqtt-pass FILE] [--ca FILE] [--cert FILE] [--key FILE] COMMON
  prepare-card --image BASE.img --csv devices.csv --template template.json --out-dir DIR COMMON
COMMON: --bundle signage-agent-X.Y.Z.tgz --node-tarball node-vX-linux-arm64.tar.xz [--node-sha256 HEX]
        [--boot-mount /boot/firmware] [--issued DIR] [--sign-key FILE [--sign-key-id ID]]

Puts on a Raspberry Pi OS card's boot partition (a mounted folder, or the FAT partition inside an
image file, written with mtools: no mount, no root) the device's config and MQTT secrets, and in
signage/ the installer, the agent bundle (npm pack output), the pinned Node tarball and the
first-boot hook (cmdline.txt systemd.run=; Imager's firstrun.sh is chained). With --csv, one image
per row is written to --out-dir as DEVICEID.img (columns: deviceId, groups as a;b, any config key
as a dotted path such as mqtt.username, secret:signage-agent.mqtt.pass = a file per device).
The Node sha256 comes from --node-sha256 or node.sha256 / SHASUMS256.txt beside the tarball.
--issued DIR (the broker's issued/ folder, signagectl broker add-device) puts each device's own
password or client certificate, and the CA, from DIR/DEVICEID/ on its card and sets its mqtt
username, passwordFile, caFile, certFile and keyFile accordingly.
--sign-key FILE (an Ed25519 private key from signagectl keygen; --key is the MQTT client key)
writes the config as a signed envelope for device/DEVICEID: a screen whose installed config has
security keys takes a new config from its boot partition only signed by one of them.`;

export interface Io {
  out(line: string): void;
  err(line: string): void;
}

function provisioningDir(): string {
  for (let d = import.meta.dirname; ; d = path.dirname(d)) {
    if (existsSync(path.join(d, 'provisioning', 'card', 'firstrun.sh'))) return path.join(d, 'provisioning');
    if (path.dirname(d) === d) throw new Error('cannot find provisioning/card beside this script');
  }
}

function readJson(file: string, what: string): Record<string, unknown> {
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Record<string, unknown>;
  } catch (e) {
    throw new UsageError(`${what} ${file}: ${(e as Error).message}`);
  }
}

class UsageError extends Error {}

function signerOf(file: string, keyId: string | undefined): Signer {
  try {
    return readSigner(file, keyId, '--sign-key');
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

export async function prepareCardCli(argv: string[], io: Io): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args: argv,
      options: {
        boot: { type: 'string' }, image: { type: 'string' }, out: { type: 'string' }, config: { type: 'string' },
        'mqtt-pass': { type: 'string' }, ca: { type: 'string' }, cert: { type: 'string' }, key: { type: 'string' },
        csv: { type: 'string' }, template: { type: 'string' }, 'out-dir': { type: 'string' },
        bundle: { type: 'string' }, 'node-tarball': { type: 'string' }, 'node-sha256': { type: 'string' },
        'boot-mount': { type: 'string', default: '/boot/firmware' }, issued: { type: 'string' }, help: { type: 'boolean', short: 'h' },
        'sign-key': { type: 'string' }, 'sign-key-id': { type: 'string' },
      },
    }).values;
  } catch (e) {
    io.err(`prepare-card: ${(e as Error).message}`);
    return 2;
  }
  if (values.help) {
    io.out(PREPARE_HELP);
    return 0;
  }
  const tmp = await mkdtemp(path.join(tmpdir(), 'prepare-card-'));
  try {
    if (!values.bundle || !existsSync(values.bundle)) throw new UsageError('--bundle FILE (npm pack output) is required');
    if (!values['node-tarball'] || !existsSync(values['node-tarball'])) throw new UsageError('--node-tarball FILE is required');
    const nodeSha256 = values['node-sha256'] ?? pinnedSha(values['node-tarball']);
    if (!nodeSha256) throw new UsageError('no sha256 for the Node tarball: --node-sha256 HEX, or node.sha256 beside it');
    if (values['sign-key-id'] !== undefined && values['sign-key'] === undefined) throw new UsageError('--sign-key-id needs --sign-key FILE');
    const signer = values['sign-key'] !== undefined ? signerOf(values['sign-key'], values['sign-key-id']) : undefined;
    const common = { bundle: values.bundle, nodeTarball: values['node-tarball'], nodeSha256, bootMount: values['boot-mount'], provisioningDir: provisioningDir(), ...(signer ? { signer } : {}) };

    if (values.csv !== undefined) {
      if (!values.image || !values.template || !values['out-dir']) throw new UsageError('--csv needs --image BASE.img, --template FILE and --out-dir DIR');
      const devices = devicesFromCsv(readFileSync(values.csv, 'utf8'), readJson(values.template, '--template'), path.dirname(path.resolve(values.csv)));
      const offset = await fatPartitionOffset(values.image);
      let failed = 0;
      for (const row of devices) {
        const out = path.join(values['out-dir'], `${String(row.config.deviceId)}.img`);
        try {
          const d = values.issued !== undefined ? withIssued(row, values.issued) : row;
          await copyFile(values.image, out);
          const r = await prepareCard(new ImageTarget(out, offset, tmp), { ...common, config: d.config, secrets: d.secrets });
          io.out(`${r.deviceId}: ${out}`);
          for (const w of r.warnings) io.err(`${r.deviceId}: warning: ${w}`);
        } catch (e) {
          failed++;
          await rm(out, { force: true });
          io.err((e as Error).message);
        }
      }
      io.out(`${devices.length - failed} of ${devices.length} card image(s) prepared in ${values['out-dir']}`);
      return failed > 0 ? 1 : 0;
    }

    if (!values.config) throw new UsageError('--config FILE is required (or --csv)');
    if ((values.boot === undefined) === (values.image === undefined)) throw new UsageError('give exactly one of --boot DIR or --image IMG');
    const secrets: Record<string, string> = {};
    if (values['mqtt-pass']) secrets['signage-agent.mqtt.pass'] = values['mqtt-pass'];
    if (values.ca) secrets['signage-agent.ca.crt'] = values.ca;
    if (values.cert) secrets['signage-agent.client.crt'] = values.cert;
    if (values.key) secrets['signage-agent.client.key'] = values.key;
    let target: BootTarget;
    if (values.boot !== undefined) target = new DirTarget(values.boot);
    else {
      let image = values.image!;
      if (values.out) {
        await copyFile(image, values.out);
        image = values.out;
      }
      target = new ImageTarget(image, await fatPartitionOffset(image), tmp);
    }
    const row = { config: readJson(values.config, '--config'), secrets };
    const inputs: CardInputs = { ...common, ...(values.issued !== undefined ? withIssued(row, values.issued) : row) };
    const r = await prepareCard(target, inputs);
    for (const w of r.warnings) io.err(`warning: ${w}`);
    io.out(`${r.deviceId}: prepared ${target.label}: ${r.files.join(' ')}`);
    return 0;
  } catch (e) {
    io.err(`prepare-card: ${(e as Error).message}`);
    return e instanceof UsageError ? 2 : 1;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
