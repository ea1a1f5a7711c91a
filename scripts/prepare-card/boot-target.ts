import { execFile } from 'node:child_process';
import { copyFile, mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

// Where prepare-card writes: a mounted boot partition (a folder), or the FAT partition inside
// a Raspberry Pi OS image file, reached with mtools at a byte offset: no mount, no root, no loop device.

const run = promisify(execFile);

export interface BootTarget {
  readonly label: string;
  mkdir(dir: string): Promise<void>;
  /** Writes `data` (or copies a local file) to a path on the partition, replacing it. */
  put(dest: string, data: Buffer | { file: string }): Promise<void>;
  /** The file's content, or undefined when absent. */
  read(file: string): Promise<Buffer | undefined>;
  remove(file: string): Promise<void>;
}

export class DirTarget implements BootTarget {
  readonly label: string;
  constructor(private readonly root: string) {
    this.label = root;
  }
  private abs(p: string): string {
    const abs = path.resolve(this.root, `.${path.posix.resolve('/', p)}`);
    return abs;
  }
  async mkdir(dir: string): Promise<void> {
    await mkdir(this.abs(dir), { recursive: true });
  }
  async put(dest: string, data: Buffer | { file: string }): Promise<void> {
    const to = this.abs(dest);
    await mkdir(path.dirname(to), { recursive: true });
    if (Buffer.isBuffer(data)) await writeFile(to, data);
    else await copyFile(data.file, to);
  }
  async read(file: string): Promise<Buffer | undefined> {
    return existsSync(this.abs(file)) ? readFile(this.abs(file)) : undefined;
  }
  async remove(file: string): Promise<void> {
    await rm(this.abs(file), { force: true });
  }
}

/** The FAT partition of a disk image at a byte offset, through mtools (`-i IMAGE@@OFFSET`). */
export class ImageTarget implements BootTarget {
  readonly label: string;
  private readonly spec: string;
  constructor(readonly image: string, readonly offset: number, private readonly tmpDir: string) {
    this.spec = `${image}@@${offset}`;
    this.label = `${image} (FAT partition at byte ${offset})`;
  }
  private m(cmd: string, args: string[]): Promise<{ stdout: string }> {
    // MTOOLS_SKIP_CHECK: images made by mkfs.vfat/mformat often have geometry mtools would nag about.
    return run(cmd, ['-i', this.spec, ...args], { env: { ...process.env, MTOOLS_SKIP_CHECK: '1', MTOOLS_NO_VFAT: '0' }, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' });
  }
  private async exists(p: string): Promise<boolean> {
    return this.m('mdir', ['-b', `::${p}`]).then(
      () => true,
      () => false,
    );
  }
  async mkdir(dir: string): Promise<void> {
    const parts = dir.split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const p = '/' + parts.slice(0, i).join('/');
      if (!(await this.exists(p))) await this.m('mmd', [`::${p}`]);
    }
  }
  async put(dest: string, data: Buffer | { file: string }): Promise<void> {
    await this.mkdir(path.posix.dirname(dest));
    let src: string;
    if (Buffer.isBuffer(data)) {
      src = path.join(this.tmpDir, `put-${process.pid}-${Math.random().toString(36).slice(2)}`);
      await writeFile(src, data, { mode: 0o600 });
    } else src = data.file;
    try {
      await this.m('mcopy', ['-o', '-n', src, `::${dest}`]);
    } finally {
      if (Buffer.isBuffer(data)) await rm(src, { force: true });
    }
  }
  async read(file: string): Promise<Buffer | undefined> {
    try {
      const r = await run('mtype', ['-i', this.spec, `::${file}`], { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' }, encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 });
      return r.stdout;
    } catch {
      return undefined;
    }
  }
  async remove(file: string): Promise<void> {
    await this.m('mdel', [`::${file}`]).catch(() => undefined);
  }
}

const FAT_MBR_TYPES = new Set([0x01, 0x04, 0x06, 0x0b, 0x0c, 0x0e, 0xef]);

/**
 * Byte offset of the first FAT partition of a disk image, read from its MBR (Raspberry Pi OS
 * images are MBR: partition 1 is the FAT boot partition, type 0x0c). GPT images are handed to
 * `sfdisk -J`.
 */
export async function fatPartitionOffset(image: string): Promise<number> {
  const fh = await open(image, 'r');
  const mbr = Buffer.alloc(512);
  try {
    await fh.read(mbr, 0, 512, 0);
  } finally {
    await fh.close();
  }
  if (mbr[510] !== 0x55 || mbr[511] !== 0xaa) throw new Error(`${image}: no partition table (no MBR signature)`);
  const entries = [0, 1, 2, 3].map((i) => {
    const o = 446 + i * 16;
    return { type: mbr[o + 4]!, start: mbr.readUInt32LE(o + 8), size: mbr.readUInt32LE(o + 12) };
  });
  if (entries.some((e) => e.type === 0xee)) return gptOffset(image);
  const fat = entries.find((e) => FAT_MBR_TYPES.has(e.type) && e.size > 0);
  if (!fat) throw new Error(`${image}: no FAT partition in the MBR (types ${entries.map((e) => e.type.toString(16)).join(', ')})`);
  return fat.start * 512;
}

async function gptOffset(image: string): Promise<number> {
  const { stdout } = await run('sfdisk', ['-J', image], { encoding: 'utf8' });
  const t = (JSON.parse(stdout) as { partitiontable: { sectorsize?: number; partitions: Array<{ start: number; type: string }> } }).partitiontable;
  const FAT_GUIDS = ['EBD0A0A2-B9E5-4433-87C0-68B6B72699C7', 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B'];
  const p = t.partitions.find((x) => FAT_GUIDS.includes(x.type.toUpperCase()));
  if (!p) throw new Error(`${image}: no FAT (basic data / EFI) partition in the GPT`);
  return p.start * (t.sectorsize ?? 512);
}
