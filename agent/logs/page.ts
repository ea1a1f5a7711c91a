import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';
import type { RingLine } from './ring.js';

const gzip = promisify(gzipCb);

// One reply of the `logs` command must stay under the 256 KiB message bound (PROTOCOL §3), and
// base64 makes 4 bytes of 3: 160 KiB of gzip is ~214 KiB of text, the rest is room for the
// reply's other fields. pino lines compress about 8-12 to 1, so a page is typically a thousand
// or more lines.
export const PAGE_GZIP_BYTES = 160 * 1024;
/** Lines handed to one gzip call at most (bounds a page's CPU on a Pi, whatever the ratio). */
const PAGE_RAW_BYTES = 2 * 1024 * 1024;

export interface Page {
  /** How many of the given lines the page holds (the first ones). */
  count: number;
  /** gzip of the lines joined by '\n'. */
  gz: Buffer;
}

/**
 * The longest prefix of `lines` whose gzip fits `budget`: guessed from the raw size, then
 * shrunk by the measured ratio until it fits. Never empty when `lines` is not (a line is at
 * most MAX_LINE_BYTES, far under the budget).
 */
export async function packPage(lines: readonly RingLine[], budget = PAGE_GZIP_BYTES): Promise<Page> {
  let n = 0;
  let raw = 0;
  while (n < lines.length && raw + lines[n]!.text.length + 1 <= PAGE_RAW_BYTES) raw += lines[n++]!.text.length + 1;
  n = Math.max(n, Math.min(1, lines.length));
  for (;;) {
    const gz = await gzip(Buffer.from(lines.slice(0, n).map((l) => l.text).join('\n')));
    if (gz.length <= budget || n <= 1) return { count: n, gz };
    n = Math.max(1, Math.floor((n * budget * 0.9) / gz.length));
  }
}
