/**
 * A verified local file ready to play. Media produces it, the engine asks for it and the player
 * shows it: a domain type of its own, so media need not import the player to name its product.
 */
export interface Clip {
  /** Absolute path (or an mpv-understood URL such as av://lavfi:… in tests). */
  path: string;
  sha256: string;
  /** Known or expected length; the player reports the real one. */
  durationMs?: number;
}
