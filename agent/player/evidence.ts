import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { inflate, inflateSync } from 'node:zlib';
import type { Clock, TimerHandle } from '../core/clock.js';

// Evidence of display: now and then during a spot, look at the frame mpv is showing. An
// all-black frame, or the same frame twice while the playhead moved, is suspicious (a broken
// encode, a stuck decoder). It says nothing of the LED wall itself; it is what the box can see.

export interface RawImage {
  width: number;
  height: number;
  /** 3 (RGB) or 4 (RGBA) bytes per pixel, rows packed. */
  channels: 3 | 4;
  pixels: Buffer;
}

const PNG_SIG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function isPng(buf: Buffer): boolean {
  return buf.length >= 24 && buf.subarray(0, 8).equals(PNG_SIG) && buf.toString('latin1', 12, 16) === 'IHDR';
}

/** Width and height from the IHDR chunk. */
export function pngSize(buf: Buffer): { width: number; height: number } {
  if (!isPng(buf)) throw new Error('not a PNG');
  return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

interface PngParts {
  width: number;
  height: number;
  channels: 3 | 4;
  idat: Buffer;
}

function pngParts(buf: Buffer): PngParts {
  const { width, height } = pngSize(buf);
  const depth = buf[24];
  const colorType = buf[25];
  const interlace = buf[28];
  if (depth !== 8 || (colorType !== 2 && colorType !== 6) || interlace !== 0) {
    throw new Error(`unsupported PNG (depth ${depth}, color type ${colorType}, interlace ${interlace})`);
  }
  const idat: Buffer[] = [];
  for (let off = 8; off + 8 <= buf.length; ) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('latin1', off + 4, off + 8);
    if (type === 'IDAT') idat.push(buf.subarray(off + 8, off + 8 + len));
    if (type === 'IEND') break;
    off += 12 + len;
  }
  return { width, height, channels: colorType === 6 ? 4 : 3, idat: Buffer.concat(idat) };
}

/** Undoes the PNG row filters of rows [y0, y1) from the inflated `data` into `out`. */
function unfilterRows(p: PngParts, data: Buffer, out: Buffer, y0: number, y1: number): void {
  const { channels } = p;
  const stride = p.width * channels;
  if (data.length < p.height * (stride + 1)) throw new Error('truncated PNG data');
  for (let y = y0; y < y1; y++) {
    const filter = data[y * (stride + 1)];
    const src = y * (stride + 1) + 1;
    const row = y * stride;
    const prev = row - stride;
    for (let x = 0; x < stride; x++) {
      const raw = data[src + x]!;
      const a = x >= channels ? out[row + x - channels]! : 0;
      const b = y > 0 ? out[prev + x]! : 0;
      const c = x >= channels && y > 0 ? out[prev + x - channels]! : 0;
      let v: number;
      switch (filter) {
        case 0: v = raw; break;
        case 1: v = raw + a; break;
        case 2: v = raw + b; break;
        case 3: v = raw + ((a + b) >> 1); break;
        case 4: v = raw + paeth(a, b, c); break;
        default: throw new Error(`bad PNG filter ${filter}`);
      }
      out[row + x] = v & 0xff;
    }
  }
}

/** Decodes the PNGs mpv writes: 8-bit RGB or RGBA, not interlaced. Anything else throws. */
export function decodePng(buf: Buffer): RawImage {
  const p = pngParts(buf);
  const out = Buffer.alloc(p.height * p.width * p.channels);
  unfilterRows(p, inflateSync(p.idat), out, 0, p.height);
  return { width: p.width, height: p.height, channels: p.channels, pixels: out };
}

const ROWS_PER_SLICE = 32;
const inflateAsync = promisify(inflate);
const yieldLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * The same, without holding the event loop: a 1080p frame is ~6 MB of pixels, tens of ms of
 * JavaScript on a Pi, and a spot may be due meanwhile. Inflates on the thread pool, unfilters a
 * slice of rows at a time.
 */
export async function decodePngAsync(buf: Buffer): Promise<RawImage> {
  const p = pngParts(buf);
  const data = await inflateAsync(p.idat);
  const out = Buffer.alloc(p.height * p.width * p.channels);
  for (let y = 0; y < p.height; y += ROWS_PER_SLICE) {
    unfilterRows(p, data, out, y, Math.min(p.height, y + ROWS_PER_SLICE));
    await yieldLoop();
  }
  return { width: p.width, height: p.height, channels: p.channels, pixels: out };
}

export interface FrameStats {
  /** Mean Rec.601 luma, 0–255. */
  meanLuma: number;
  /** Brightest pixel's luma. */
  maxLuma: number;
  /** Digest of the pixels: equal digests = identical frames. */
  digest: string;
}

function lumaOf(img: RawImage, from: number, to: number, acc: { sum: number; max: number }): void {
  for (let i = from, p = from * img.channels; i < to; i++, p += img.channels) {
    const l = (299 * img.pixels[p]! + 587 * img.pixels[p + 1]! + 114 * img.pixels[p + 2]!) / 1000;
    acc.sum += l;
    if (l > acc.max) acc.max = l;
  }
}

export function frameStats(img: RawImage): FrameStats {
  const n = img.width * img.height;
  const acc = { sum: 0, max: 0 };
  lumaOf(img, 0, n, acc);
  return { meanLuma: n ? acc.sum / n : 0, maxLuma: acc.max, digest: createHash('sha1').update(img.pixels).digest('hex') };
}

/** frameStats of a PNG, a slice at a time (see decodePngAsync). */
export async function pngStats(buf: Buffer): Promise<FrameStats> {
  const img = await decodePngAsync(buf);
  const n = img.width * img.height;
  const acc = { sum: 0, max: 0 };
  const step = img.width * ROWS_PER_SLICE * 2;
  for (let i = 0; i < n; i += step) {
    lumaOf(img, i, Math.min(n, i + step), acc);
    await yieldLoop();
  }
  return { meanLuma: n ? acc.sum / n : 0, maxLuma: acc.max, digest: createHash('sha1').update(img.pixels).digest('hex') };
}

/** All black: nothing brighter than video black (16) plus noise anywhere in the frame. */
export function looksBlack(s: FrameStats): boolean {
  return s.maxLuma <= 32 && s.meanLuma <= 20;
}

export interface SuspectDetail {
  playId: string;
  campaignId: string;
  reason: 'black' | 'frozen';
  meanLuma: number;
  /** Playhead position (s) at the sample. */
  timePos?: number;
}

export interface EvidenceContext {
  clock: Clock;
  /** Time between samples; the first comes one interval after the spot started. */
  intervalMs: number;
  /** The current frame as PNG. */
  capture(): Promise<Buffer>;
  /** The playhead, to tell "frozen" from "the clip did not move because we sampled twice at once". */
  timePos(): number | undefined;
  onSuspect(d: SuspectDetail): void;
  onError?(e: Error): void;
}

/**
 * Samples frames of one spot. Each reason is reported once per spot. Low rate by design: a
 * screenshot costs mpv a PNG encode of the full frame, which a Pi should not do often.
 */
export class SpotEvidence {
  private timer: TimerHandle | undefined;
  private last: { digest: string; timePos: number | undefined } | undefined;
  private readonly reported = new Set<string>();
  private stopped = false;

  constructor(private readonly ctx: EvidenceContext, private readonly spot: { playId: string; campaignId: string }) {}

  start(): void {
    this.arm();
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  private arm(): void {
    if (this.stopped) return;
    this.timer = this.ctx.clock.setTimer(this.ctx.intervalMs, () => {
      this.sample()
        .catch((e: Error) => this.ctx.onError?.(e))
        .finally(() => this.arm());
    });
  }

  private async sample(): Promise<void> {
    let png: Buffer;
    const timePos = this.ctx.timePos();
    try {
      png = await this.ctx.capture();
    } catch (e) {
      // The spot may have just ended; only a live sampler's failures are worth a word.
      if (!this.stopped) this.ctx.onError?.(e as Error);
      return;
    }
    if (this.stopped) return;
    const s = await pngStats(png);
    const prev = this.last;
    this.last = { digest: s.digest, timePos };
    if (looksBlack(s)) return this.report('black', s, timePos);
    const moved = prev?.timePos !== undefined && timePos !== undefined && timePos - prev.timePos >= this.ctx.intervalMs / 2000;
    if (prev && moved && prev.digest === s.digest) this.report('frozen', s, timePos);
  }

  private report(reason: 'black' | 'frozen', s: FrameStats, timePos: number | undefined): void {
    if (this.reported.has(reason)) return;
    this.reported.add(reason);
    const d: SuspectDetail = { ...this.spot, reason, meanLuma: Math.round(s.meanLuma * 10) / 10 };
    if (timePos !== undefined) d.timePos = timePos;
    this.ctx.onSuspect(d);
  }
}
