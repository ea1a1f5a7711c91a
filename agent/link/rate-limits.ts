import type { Clock } from '../core/clock.js';

// Issue 10 item 6: a command that passes the broker's ACL and (in signed mode) the signature
// can still be sent a thousand times. Each name has its own token bucket, read on the monotonic
// clock (an NTP step neither refills nor drains it); a command over its bucket is refused at
// arrival, answered `ok:false`, and never queued, so it cannot keep a cheap command waiting.

export interface CommandLimit {
  /** Commands that may arrive at once. */
  burst: number;
  /** One token comes back every refillMs. */
  refillMs: number;
  /** At most one of this name queued or running: a second one is refused, not queued. */
  exclusive?: boolean;
}

/**
 * Why these numbers:
 * - `restart-player` stops mpv and starts it again: the screen goes black for a second or two
 *   and a spot in the player is cut (counted as interrupted). One at a time, and one per 30 s,
 *   which is longer than a restart takes on a Pi, so a retry loop cannot keep a screen dark.
 * - `screenshot` costs mpv a PNG encode of a full frame (about half a second of a Pi 4's CPU
 *   at 1080p) and ~2–4 MB on the uplink: 3 at once covers "take another, it was mid-fade",
 *   and then one per 10 s.
 * - `play-now` puts a spot in front of the plan; the engine also refuses it for a campaign
 *   that already has a spot waiting for the player, so a campaign never piles up ahead of others.
 * - `ping`, `status`, `report` are reads: 20 at once for a dashboard that asks many screens
 *   and then 5 a second, still bounded because each one is a reply on the uplink.
 * - `logs` answers up to ~214 KiB a page (a gzip of up to 2 MB of lines): 10 at once reads a
 *   full ring of a few MB page by page, then one a second, which is what `signagectl logs
 *   --follow` polls at; a loop asking for pages costs at most ~214 KiB/s of uplink.
 * - `log-level` changes what every component logs (debug is ~10× the lines of info): 3 at once,
 *   then one a minute, so a script cannot keep flipping it.
 */
export const COMMAND_LIMITS: Readonly<Record<string, CommandLimit>> = {
  'restart-player': { burst: 1, refillMs: 30_000, exclusive: true },
  screenshot: { burst: 3, refillMs: 10_000 },
  'play-now': { burst: 3, refillMs: 10_000 },
  ping: { burst: 20, refillMs: 200 },
  status: { burst: 20, refillMs: 200 },
  report: { burst: 20, refillMs: 200 },
  logs: { burst: 10, refillMs: 1_000 },
  'log-level': { burst: 3, refillMs: 60_000 },
  // An update downloads a release and restarts the agent: one at a time, a retry or two, then one a minute.
  update: { burst: 3, refillMs: 60_000, exclusive: true },
};

/** A name without its own limit gets this (every handler should have one; see the test). */
const DEFAULT_LIMIT: CommandLimit = { burst: 3, refillMs: 10_000 };

class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(private readonly limit: CommandLimit, now: number) {
    this.tokens = limit.burst;
    this.at = now;
  }

  /** 0 when a token was taken; else the ms until the next one. */
  take(now: number): number {
    const { burst, refillMs } = this.limit;
    const earned = Math.floor((now - this.at) / refillMs);
    if (earned > 0) {
      this.tokens = Math.min(burst, this.tokens + earned);
      // A full bucket forgets the part-earned token; a partial one keeps it.
      this.at = this.tokens === burst ? now : this.at + earned * refillMs;
    }
    if (this.tokens > 0) {
      if (this.tokens === burst) this.at = now;
      this.tokens--;
      return 0;
    }
    return Math.max(1, this.at + refillMs - now);
  }
}

export type Admission = { ok: true; done(): void } | { ok: false; error: string };

export class CommandLimiter {
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly running = new Set<string>();
  readonly stats = { limited: 0 };

  constructor(
    private readonly clock: Clock,
    private readonly limits: Readonly<Record<string, CommandLimit>> = COMMAND_LIMITS,
  ) {}

  /** Takes a token for `name`, or says why not. `done()` ends an exclusive command's turn. */
  admit(name: string): Admission {
    const limit = Object.hasOwn(this.limits, name) ? (this.limits[name] ?? DEFAULT_LIMIT) : DEFAULT_LIMIT;
    const now = this.clock.monotonic();
    if (limit.exclusive && this.running.has(name)) {
      this.stats.limited++;
      return { ok: false, error: `rate limited: ${name} is already under way; retry after ${Math.ceil(limit.refillMs / 1000)} s` };
    }
    let bucket = this.buckets.get(name);
    if (!bucket) {
      bucket = new TokenBucket(limit, now);
      this.buckets.set(name, bucket);
    }
    const wait = bucket.take(now);
    if (wait > 0) {
      this.stats.limited++;
      return { ok: false, error: `rate limited: retry after ${Math.ceil(wait / 1000)} s` };
    }
    if (!limit.exclusive) return { ok: true, done: () => undefined };
    this.running.add(name);
    let ended = false;
    return {
      ok: true,
      done: () => {
        if (ended) return;
        ended = true;
        this.running.delete(name);
      },
    };
  }
}
