import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { MPV_MEDIA_SAFETY_ARGS } from '../agent/core/media-formats.js';
import { probeDuration } from '../agent/media/probe.js';
import { AGENT_MPV_ARGS } from '../agent/player/mpv-args.js';
import { HEADLESS, makeClip, makeStill } from './helpers/clips.js';
import { clip, harness, spotRecord } from './helpers/mpv-harness.js';
import { tempDir, type Teardown } from './helpers/tmp.js';

// Issue 10 item 5: a hash-verified file is only the file its publisher named, not a video. mpv
// recognises playlists and EDL files by their content whatever their name, so an `.mp4` holding
// "# mpv EDL v0" or an m3u would make the screen play a file nobody verified (or fetch a URL).
// Real headless mpv, through the agent's player and its length probe.

const ENDED_WITHIN_MS = 15_000;

async function playOnce(t: Teardown, file: string, log: string): Promise<{ outcome: string | undefined; paths: string[] }> {
  const h = harness(t, { args: [...HEADLESS, `--log-file=${log}`] });
  await h.player.start();
  const r = spotRecord();
  await h.player.playSpot({ playId: `p-${path.basename(file)}`, campaignId: 'c', clip: clip(file) }, r.handlers);
  await Promise.race([r.ended, new Promise((res) => setTimeout(res, ENDED_WITHIN_MS))]);
  await h.player.stop();
  return { outcome: r.outcome, paths: h.traces.map((e) => e.path ?? '') };
}

t.test('the agent runs mpv without references and with only media demuxers', async (t) => {
  t.ok(AGENT_MPV_ARGS.includes('--access-references=no'));
  t.ok(MPV_MEDIA_SAFETY_ARGS.every((a) => AGENT_MPV_ARGS.includes(a)));
  t.match(MPV_MEDIA_SAFETY_ARGS.join(' '), /--demuxer-lavf-o-append=format_whitelist=\S*mov\S*matroska/);
  t.notMatch(MPV_MEDIA_SAFETY_ARGS.join(' '), /hls|concat|image2\b/);
});

t.test('a verified file holding an m3u, EDL, HLS or ffconcat playlist plays nothing else', async (t) => {
  const dir = tempDir(t, 'mpv-refs-');
  const other = path.join(dir, 'unverified-other.mp4');
  copyFileSync(await makeClip({ kind: 'pattern', seconds: 1 }), other);
  const bodies: Record<string, string> = {
    m3u: `#EXTM3U\n${other}\n`,
    plain: `${other}\n`,
    edl: `# mpv EDL v0\n${other}\n`,
    hls: `#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n${other}\n#EXT-X-ENDLIST\n`,
    ffconcat: `ffconcat version 1.0\nfile ${other}\n`,
  };
  for (const [kind, body] of Object.entries(bodies)) {
    const file = path.join(dir, `${'0'.repeat(60)}${kind.slice(0, 4).padEnd(4, '0')}.mp4`); // named like a cached file
    writeFileSync(file, body);
    const log = path.join(dir, `${kind}.log`);
    const { outcome, paths } = await playOnce(t, file, log);
    t.not(outcome, 'completed', `${kind}: not a completed play`);
    t.notOk(paths.includes(other), `${kind}: the player never started the other file`);
    const text = existsSync(log) ? readFileSync(log, 'utf8') : '';
    t.notMatch(text, /Opening .*unverified-other\.mp4/, `${kind}: mpv never opened the other file`);
    t.equal(await probeDuration(file, { mpvPath: 'mpv' }), undefined, `${kind}: the length probe does not follow it either`);
  }
});

t.test('mp4, mkv, webm, png and jpg still play', async (t) => {
  const dir = tempDir(t, 'mpv-formats-');
  const mp4 = await makeClip({ kind: 'pattern', seconds: 1 });
  const mkv = path.join(dir, 'a.mkv');
  const webm = path.join(dir, 'a.webm');
  const jpg = path.join(dir, 'a.jpg');
  const ff = (args: string[]): void => void execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args]);
  ff(['-i', mp4, '-c', 'copy', mkv]);
  ff(['-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=25', '-t', '1', '-c:v', 'libvpx', '-b:v', '200k', webm]);
  ff(['-f', 'lavfi', '-i', 'testsrc2=size=160x120', '-frames:v', '1', jpg]);
  for (const file of [mp4, mkv, webm, await makeStill(), jpg]) {
    const { outcome } = await playOnce(t, file, path.join(dir, `${path.basename(file)}.log`));
    t.equal(outcome, 'completed', `${path.extname(file)} plays`);
  }
  t.ok((await probeDuration(mkv, { mpvPath: 'mpv' }))! > 900, 'the probe reads a video length as before');
});
