import type { Logger } from '../core/log.js';
import type { AppliedVersions } from '../core/desired.js';
import type { TypedPublish } from '../protocol/encode.js';
import { statusOffline, statusOnline } from '../protocol/outbound.js';

// The device's retained `status` (PROTOCOL §8): the birth after every connection and every
// change of what is applied, the offline status before a clean disconnect (which deletes the
// Will), and the answer to a late Will of an older session.

export interface StatusContext {
  log: Logger;
  send: TypedPublish<Promise<number>>;
  /** The current connection's session number, and whether it is up and not stopping. */
  session(): number;
  live(): boolean;
  storeId(): string;
  agentVersion: string;
  bootedAt: number;
  applied(): AppliedVersions;
}

export class StatusPublisher {
  /** Publishes are chained: a birth never overtakes the one before it on the retained topic. */
  private chain: Promise<void> = Promise.resolve();
  private republishQueued = false;

  constructor(private readonly ctx: StatusContext) {}

  /** The birth message, after those already asked for; never rejects (a failure is logged). */
  publish(): Promise<void> {
    const { ctx } = this;
    const next = this.chain.then(async () => {
      if (!ctx.live()) return;
      await ctx.send('status', statusOnline({ session: ctx.session(), storeId: ctx.storeId(), agentVersion: ctx.agentVersion, bootedAt: ctx.bootedAt, applied: ctx.applied() }));
    });
    this.chain = next.catch((e: unknown) => ctx.log.debug({ err: e }, 'status not published'));
    return this.chain;
  }

  /** "offline" for this session, retained: said by us because a clean DISCONNECT deletes the Will. */
  async offline(): Promise<void> {
    await this.ctx.send('status', statusOffline(this.ctx.session()));
  }

  /**
   * A message on our own status topic that is not the retained copy. A Will of an earlier session
   * can land after our birth (a half-open old connection dropped late); it carries the old
   * session number, so re-assert the current status over it.
   */
  onOwnStatus(payload: Buffer): void {
    try {
      const s = JSON.parse(payload.toString('utf8')) as { online?: unknown; session?: unknown };
      // One republish at a time: a flood of fake Wills must not queue a flood of publishes.
      if (s && s.online === false && s.session !== this.ctx.session() && this.ctx.live() && !this.republishQueued) {
        this.ctx.log.info({ stale: s.session, session: this.ctx.session() }, 'late Will of an old session: republishing status');
        this.republishQueued = true;
        void this.publish().finally(() => { this.republishQueued = false; });
      }
    } catch {
      // Not ours to judge; ignore.
    }
  }
}
