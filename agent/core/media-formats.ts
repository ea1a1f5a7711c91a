// What mpv may open from the media cache (issue 10 item 5), shared by the player and the
// length probe: both open files whose content an assignment's publisher chose. The sha256 only
// proves the file is the one they named, not that it is a video: an m3u, an EDL (`# mpv EDL v0`)
// or an ffconcat/HLS playlist with a hash that matches would make mpv open other files or URLs.

/**
 * libavformat demuxers allowed (their names as `mpv --msg-level=demux=v` prints them; a
 * demuxer with several names matches on any). Not here: hls, concat, the playlist and image
 * sequence readers, and everything else that can open a second file.
 */
export const LAVF_FORMATS = [
  'mov', 'mp4', 'm4a', '3gp', '3g2', 'mj2', // ISO media (mp4, mov, m4a)
  'matroska', 'webm',
  'mpegts', 'avi', 'flv', 'ogg', 'mp3', 'aac', 'wav', 'flac',
  'png_pipe', 'jpeg_pipe', 'webp_pipe', 'bmp_pipe', 'gif',
] as const;

export const MPV_MEDIA_SAFETY_ARGS: readonly string[] = [
  // No playlists, EDL, ordered chapters, mov reference files or archives: mpv's own playlist and
  // EDL demuxers recognise those by content whatever the file's name, and refuse with this off.
  '--access-references=no',
  // libavformat's own readers of other files (hls, concat) are outside this list.
  `--demuxer-lavf-o-append=format_whitelist=${LAVF_FORMATS.join(',')}`,
];

/** Extensions a cached file may carry (mpv only uses it as a hint); any other is dropped. */
export const MEDIA_EXTENSIONS: ReadonlySet<string> = new Set([
  '.mp4', '.m4v', '.mov', '.mkv', '.webm', '.ts', '.avi', '.flv', '.ogg', '.ogv',
  '.mp3', '.m4a', '.aac', '.wav', '.flac',
  '.png', '.jpg', '.jpeg', '.webp', '.bmp', '.gif',
]);
