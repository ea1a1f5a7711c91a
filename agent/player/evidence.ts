import { createHash } from 'node:crypto';
import { inflateSync } from 'node:zlib';
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

/** Decodes the PNGs mpv writes: 8-bit RGB or RGBA, not interlaced. Anything else throws. */
export function decodePng(buf: Buffer): RawImage {
  const { width, height } = pngSize(buf);
  const depth = buf[24];
  const colorType = buf[25];
  const interlace = buf[28];
  if (depth !== 8 || (colorType !== 2 && colorType !== 6) || interlace !== 0) {
    throw new Error(`unsupported PNG (depth ${depth}, color type ${colorType}, interlace ${interlace})`);
  }
  const channels = colorType === 6 ? 4 : 3;
  const idat: Buffer[] = [];
  for (let off = 8; off + 8 <= buf.length; ) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('latin1', off + 4, off + 8);
    if (type === 'IDAT') idat.push(buf.subarray(off + 8, off + 8 + len));
    if (type === 'IEND') break;
    off += 12 + len;
  }
  const data = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  if (data.length < height * (stride + 1)) throw new Error('truncated PNG data');
  const out = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
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
  return { width, height, channels, pixels: out };
}

export interface FrameStats {
  /** Mean Rec.601 luma, 0–255. */
  meanLuma: number;
  /** Brightest pixel's luma. */
  maxLuma: number;
  /** Digest of the pixels: equal digests = identical frames. */
  digest: string;
}

export function frameStats(img: RawImage): FrameStats {
  let sum = 0;
  let max = 0;
  const n = img.width * img.height;
  for (let i = 0, p = 0; i < n; i++, p += img.channels) {
    const l = (299 * img.pixels[p]! + 587 * img.pixels[p + 1]! + 114 * img.pixels[p + 2]!) / 1000;
    sum += l;
    if (l > max) max = l;
  }
  return { meanLuma: n ? sum / n : 0, maxLuma: max, digest: createHash('sha1').update(img.pixels).digest('hex') };
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
    const s = frameStats(decodePng(png));
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
