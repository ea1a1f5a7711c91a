import { deflateSync } from 'node:zlib';
import t from 'tap';
import { decodePng, frameStats, isPng, looksBlack, pngSize, pngStats } from '../agent/player/evidence.js';
import { makeClip } from './helpers/clips.js';
import { clip, harness, spotRecord } from './helpers/mpv-harness.js';
import { waitFor } from './helpers/wait.js';

function crcTable(): Uint32Array {
  const tb = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    tb[n] = c >>> 0;
  }
  return tb;
}
const CRC = crcTable();
function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  let c = 0xffffffff;
  for (const b of Buffer.concat([head.subarray(4), data])) c = CRC[(c ^ b) & 0xff]! ^ (c >>> 8);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE((c ^ 0xffffffff) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

/** An RGB PNG whose rows use the given filters (the encoder side of each filter, done by hand). */
function encodePng(w: number, h: number, px: (x: number, y: number) => [number, number, number], filters: number[]): Buffer {
  const stride = w * 3;
  const raw = Buffer.alloc(h * stride);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw.set(px(x, y), y * stride + x * 3);
  const out: number[] = [];
  for (let y = 0; y < h; y++) {
    const f = filters[y % filters.length]!;
    out.push(f);
    for (let i = 0; i < stride; i++) {
      const cur = raw[y * stride + i]!;
      const a = i >= 3 ? raw[y * stride + i - 3]! : 0;
      const b = y > 0 ? raw[(y - 1) * stride + i]! : 0;
      const c = i >= 3 && y > 0 ? raw[(y - 1) * stride + i - 3]! : 0;
      const p = a + b - c;
      const pr = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      const pred = [0, a, b, (a + b) >> 1, pr][f]!;
      out.push((cur - pred) & 0xff);
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.from(out))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

t.test('PNG decoder: every filter type round-trips', async (t) => {
  const px = (x: number, y: number): [number, number, number] => [(x * 37 + y) & 0xff, (y * 91) & 0xff, (x ^ y) & 0xff];
  const png = encodePng(13, 10, px, [0, 1, 2, 3, 4]);
  t.ok(isPng(png));
  t.same(pngSize(png), { width: 13, height: 10 });
  const img = decodePng(png);
  t.equal(img.channels, 3);
  let same = true;
  for (let y = 0; y < 10; y++) for (let x = 0; x < 13; x++) {
    const [r, g, b] = px(x, y);
    const o = (y * 13 + x) * 3;
    if (img.pixels[o] !== r || img.pixels[o + 1] !== g || img.pixels[o + 2] !== b) same = false;
  }
  t.ok(same, 'pixels match');
  const black = frameStats(decodePng(encodePng(8, 8, () => [0, 0, 0], [1])));
  t.ok(looksBlack(black));
  t.notOk(looksBlack(frameStats(img)));
  t.throws(() => decodePng(Buffer.from('not a png at all, really not')), /not a PNG/);
  const big = encodePng(200, 150, px, [4, 2, 1, 3, 0]);
  t.same(await pngStats(big), frameStats(decodePng(big)), 'the sliced async path agrees with the sync one');
});

t.test('screenshot is a real PNG of the moving test pattern', async (t) => {
  const loopClip = await makeClip({ kind: 'pattern', seconds: 3 });
  const h = harness(t);
  await h.player.start();
  h.player.setLoop([clip(loopClip)]);
  await waitFor('loop playing', () => h.traces.some((e) => e.event === 'playing'), 15_000);
  const png = await h.player.screenshot();
  t.ok(isPng(png), 'PNG signature and IHDR');
  t.same(pngSize(png), { width: 160, height: 120 });
  const s1 = frameStats(decodePng(png));
  t.notOk(looksBlack(s1), `not black (mean luma ${s1.meanLuma.toFixed(1)})`);
  await new Promise((r) => setTimeout(r, 400));
  const s2 = frameStats(decodePng(await h.player.screenshot()));
  t.not(s2.digest, s1.digest, 'the pattern moves between samples');
});

t.test('a black clip during a spot is reported as output-suspect black; a moving one is not', async (t) => {
  const blackClip = await makeClip({ kind: 'black', seconds: 2 });
  const moving = await makeClip({ kind: 'pattern', seconds: 2, size: '192x144' });
  const h = harness(t, { evidence: { intervalMs: 500 } });
  await h.player.start();
  const ok = spotRecord();
  await h.player.playSpot({ playId: 'm', campaignId: 'moving', clip: clip(moving) }, ok.handlers);
  await ok.ended;
  t.equal(ok.outcome, 'completed');
  t.same(h.suspects, [], 'nothing suspect on a moving pattern');
  const r = spotRecord();
  await h.player.playSpot({ playId: 'b', campaignId: 'dark', clip: clip(blackClip) }, r.handlers);
  await r.ended;
  t.equal(r.outcome, 'completed', 'sampling did not disturb the play');
  t.equal(h.suspects.length, 1, 'reported once');
  t.match(h.suspects[0], { playId: 'b', campaignId: 'dark', reason: 'black' });
});

t.test('a spot whose frames never change while the playhead moves is reported frozen', async (t) => {
  const still = await makeClip({ kind: 'still', seconds: 2 });
  const h = harness(t, { evidence: { intervalMs: 500 } });
  await h.player.start();
  const r = spotRecord();
  await h.player.playSpot({ playId: 's', campaignId: 'still', clip: clip(still) }, r.handlers);
  await r.ended;
  t.equal(r.outcome, 'completed');
  t.equal(h.suspects.length, 1, 'reported once');
  t.match(h.suspects[0], { playId: 's', campaignId: 'still', reason: 'frozen' });
});
