import { createHash } from 'node:crypto';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Clip } from '../core/clip.js';
import { sha256Of } from '../media/index-file.js';

// A text alert (§10 `text`) shown full screen: rendered once, on arrival, into a short still
// clip that the player plays like any other (so a pre-staged text alert needs nothing at its
// instant but a loadfile). ffmpeg's drawtext draws it with a font named explicitly, never
// fontconfig's pick: Pi OS Lite ships no font with Vietnamese diacritics by default, and a
// fallback would draw boxes. DejaVu Sans (Debian `fonts-dejavu-core`) has every Vietnamese letter.

export const DEFAULT_ALERT_FONT = '/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf';
/** One showing of a text card; a looping alert repeats it. */
export const TEXT_CARD_MS = 30_000;
const WIDTH = 1920;
const HEIGHT = 1080;
const MARGIN = 100;
/** DejaVu Sans Bold's mean advance is about 0.62 em; wrapping to it keeps lines inside the margins. */
const ADVANCE_EM = 0.64;

/** Runs ffmpeg with these arguments; rejects on failure. */
export type RunFfmpeg = (args: string[]) => Promise<unknown>;

export interface TextCardContext {
  /** Where cards are kept (`dataDir/alerts`). */
  dir: string;
  fontFile: string;
  ffmpeg: RunFfmpeg;
}

/** The text as drawn: NFC (precomposed letters, which a font without shaping draws right), lines wrapped to fit. */
export function layoutText(text: string): { lines: string[]; fontSize: number } {
  const words = text.normalize('NFC').replace(/\s+/g, ' ').trim().split(' ');
  for (let size = 140; size > 36; size -= 4) {
    const perLine = Math.floor((WIDTH - 2 * MARGIN) / (size * ADVANCE_EM));
    const lines = wrap(words, perLine);
    if (lines.length * size * 1.3 <= HEIGHT - 2 * MARGIN && lines.every((l) => [...l].length <= perLine)) return { lines, fontSize: size };
  }
  return { lines: wrap(words, Math.floor((WIDTH - 2 * MARGIN) / (36 * ADVANCE_EM))), fontSize: 36 };
}

function wrap(words: string[], perLine: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const w of words) {
    if (line && [...line].length + 1 + [...w].length > perLine) {
      lines.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) lines.push(line);
  return lines;
}

/**
 * A path as a filtergraph option value. Two escaping levels (option, graph) make any quoting
 * fragile, so only paths that need none are taken: a dataDir or font with `:`, `,`, quotes or
 * brackets in its path is refused with its name rather than drawn wrong.
 */
function filterValue(s: string): string {
  if (!/^[A-Za-z0-9_./+@-]+$/.test(s)) throw new Error(`path ${JSON.stringify(s)} has characters ffmpeg's filtergraph would need escaped; use a plainer dataDir or font path`);
  return s;
}

/** drawtext options for the card (the test renders its reference with the same ones). */
export function drawtextFilter(textFile: string, fontFile: string, fontSize: number): string {
  return [
    `drawtext=fontfile=${filterValue(fontFile)}`,
    `textfile=${filterValue(textFile)}`,
    'expansion=none',
    'fontcolor=white',
    `fontsize=${fontSize}`,
    `line_spacing=${Math.round(fontSize * 0.3)}`,
    'x=(w-text_w)/2',
    'y=(h-text_h)/2',
  ].join(':');
}

/** ffmpeg arguments: white text centred on dark red, `TEXT_CARD_MS` of a 2 fps still (tiny, and cheap to decode on a Pi). */
export function cardArgs(textFile: string, fontFile: string, fontSize: number, out: string): string[] {
  return [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', `color=c=0x8b0000:s=${WIDTH}x${HEIGHT}:r=2:d=${TEXT_CARD_MS / 1000}`,
    // Tagged BT.709: an untagged HD file is decoded as BT.709 by mpv but was encoded as BT.601,
    // which shifts the red and the antialiasing of the letters.
    '-vf', `${drawtextFilter(textFile, fontFile, fontSize)},scale=out_color_matrix=bt709:out_range=tv,format=yuv420p`,
    '-colorspace', 'bt709', '-color_primaries', 'bt709', '-color_trc', 'bt709', '-color_range', 'tv',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'stillimage', '-g', '4',
    '-f', 'mp4', out,
  ];
}

/** Renders `text` once per (text, font); a card already on disk is reused. */
export async function renderTextCard(ctx: TextCardContext, text: string): Promise<Clip> {
  const { lines, fontSize } = layoutText(text);
  const key = createHash('sha256').update(`${ctx.fontFile}\n${fontSize}\n${lines.join('\n')}`).digest('hex').slice(0, 24);
  const out = path.join(ctx.dir, `card-${key}.mp4`);
  await mkdir(ctx.dir, { recursive: true });
  const done = await stat(out).then((s) => s.size > 0, () => false);
  if (!done) {
    const textFile = path.join(ctx.dir, `card-${key}.txt`);
    const tmp = `${out}.tmp`;
    try {
      await writeFile(textFile, lines.join('\n'));
      await ctx.ffmpeg(cardArgs(textFile, ctx.fontFile, fontSize, tmp));
      // Renamed whole: a power cut mid-render leaves no half card to be taken for a finished one.
      await rename(tmp, out);
    } finally {
      await rm(tmp, { force: true });
      await rm(textFile, { force: true });
    }
  }
  return { path: out, sha256: await sha256Of(out), durationMs: TEXT_CARD_MS };
}

