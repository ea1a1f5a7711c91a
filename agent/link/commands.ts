import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import { commandSchema, idSchema, localDateSchema, type CommandRequest } from '../protocol/schemas.js';
import type { Store } from '../store/store.js';
import { clip, decodeDocument, type Decoded } from '../protocol/decode.js';
import type { KeyRing } from '../protocol/envelope.js';
import { MAX_COMMAND_LIFETIME_MS, type Trust } from '../protocol/trust.js';
import { InboundQueue } from './inbound-queue.js';
import { commandError, commandOk, type CommandResult } from '../protocol/outbound.js';
import type { RejectedReporter } from './rejected.js';
import type { LinkHost, LogCommands } from './host.js';
import { CommandLimiter, type CommandLimit } from './rate-limits.js';

// PROTOCOL §7. Order of checks, on arrival: decode → an id that just ran or waits → expiry →
// known name → its rate limit (rate-limits.ts); then, queued: expiry again → at-most-once claim
// → run. A command that cannot be decoded is also a `rejected` event (§3), and still answered
// when its id or a response topic can be found, so the caller is not left waiting. Everything
// refused goes through the same bounded send(), so a flood of refused commands is not a flood
// of replies, and counts in the topic's coalesced `rejected` row.

/** Ids of the commands queued lately, so a repeated id is answered `duplicate` without spending a token (the store's claim stays the real at-most-once check). */
const RECENT_IDS = 256;

/** The §7 result as the protocol defines it; the link encodes it for the reply topic. */
export type CommandReply = CommandResult;

export interface ReplyRoute {
  topic: string;
  correlationData?: Buffer;
}

type Handler = (args: Record<string, unknown>, host: LinkHost, now: number) => Promise<unknown>;

const handlers: Record<string, Handler> = {
  ping: async (_a, _h, now) => ({ pong: true, ts: new Date(now).toISOString() }),
  status: async (_a, h) => await h.status(),
  'play-now': async (a, h) => {
    const id = idSchema.safeParse(a.campaignId);
    if (!id.success) throw new Error('args.campaignId: must be a campaign id');
    return await h.playNow(id.data);
  },
  screenshot: async (_a, h) => {
    const png = await h.screenshot();
    return { png: png.toString('base64'), bytes: png.length, mime: 'image/png' };
  },
  'restart-player': async (_a, h) => {
    await h.restartPlayer();
    return {};
  },
  report: async (a, h) => {
    const d = localDateSchema.safeParse(a.date);
    if (!d.success) throw new Error('args.date: must be a real date YYYY-MM-DD');
    return await h.report(d.data);
  },
  // Issue 13 item 5: recent log lines from memory, and a level change that expires.
  logs: async (a, h) => await logCommandsOf(h).logs(a),
  'log-level': async (a, h) => logCommandsOf(h).logLevel(a),
  // Issue 13: answered once accepted; the outcome is the next status/heartbeat version, or an `update-failed` event.
  update: async (a, h) => await h.update(a),
};

function logCommandsOf(h: LinkHost): LogCommands {
  if (!h.logCommands) throw new Error('this agent has no log commands');
  return h.logCommands;
}

export const COMMAND_NAMES = Object.keys(handlers);

/**
 * Pure and total. A signed command must carry expiresAt (§9), at most 24 h after its issuedAt
 * (v1.1): a leaked signed command is worthless a day later at the latest.
 */
export function decodeCommand(payload: Uint8Array, target: string, keys: Trust | KeyRing | undefined, now: number): Decoded<CommandRequest> {
  const r = decodeDocument(payload, commandSchema, target, keys, 'cmd', now);
  if (!r.ok || !keys) return r;
  if (r.doc.expiresAt === undefined) return { ok: false, reason: 'signed command must carry expiresAt' };
  // decodeDocument has checked that issuedAt is there in signed mode.
  const life = Date.parse(r.doc.expiresAt) - Date.parse(r.doc.issuedAt ?? '');
  if (!(life <= MAX_COMMAND_LIFETIME_MS)) return { ok: false, reason: `signed command lives too long: expiresAt ${r.doc.expiresAt} is more than 24 h after issuedAt ${r.doc.issuedAt ?? '?'}` };
  return r;
}

/** Best effort: the id and replyTo of a command that failed to decode (plain mode only). */
function salvage(payload: Uint8Array): { id: string | null; replyTo?: string } {
  try {
    const v = JSON.parse(Buffer.from(payload).toString('utf8')) as Record<string, unknown>;
    const id = typeof v?.id === 'string' && v.id.length > 0 && v.id.length <= 128 ? v.id : null;
    const replyTo = typeof v?.replyTo === 'string' && v.replyTo.length > 0 && v.replyTo.length <= 512 && !/[+#\u0000]/.test(v.replyTo) ? v.replyTo : undefined;
    return replyTo === undefined ? { id } : { id, replyTo };
  } catch {
    return { id: null };
  }
}

export interface CommandContext {
  store: Store;
  clock: Clock;
  log: Logger;
  /** Read on every command: a key set applied a moment ago verifies the next one. */
  trust(): Trust | undefined;
  target: string;
  defaultReplyTopic: string;
  rejected: RejectedReporter;
  host(): LinkHost | undefined;
  reply(route: ReplyRoute, body: CommandReply): Promise<void>;
  /** Commands waiting to run (default 16); beyond it they are answered `busy` or dropped. */
  maxQueued?: number;
  /** Replies awaiting their PUBACK (default 16); beyond it a reply is not sent. */
  maxReplies?: number;
  /** Per-name token buckets (default COMMAND_LIMITS). */
  limits?: Readonly<Record<string, CommandLimit>>;
}

interface Queued {
  cmd: CommandRequest;
  route: ReplyRoute;
  /** Ends the command's turn at its rate limit (exclusive commands). */
  done(): void;
}

/**
 * Commands decode on arrival (junk costs a parse and a counter, nothing in the store); those
 * that decode run one at a time from a bounded queue. Only a command that is about to run is
 * claimed in the store (at-most-once), so ids of refused, expired or unknown commands are not
 * kept for 30 days.
 */
export class CommandRunner {
  private readonly queue: InboundQueue<Queued>;
  private replies = 0;
  private readonly limiter: CommandLimiter;
  private readonly recent = new Set<string>();
  readonly stats = { dropped: 0, repliesDropped: 0, limited: 0 };

  constructor(private readonly ctx: CommandContext) {
    this.limiter = new CommandLimiter(ctx.clock, ctx.limits);
    this.queue = new InboundQueue<Queued>({
      name: 'commands',
      maxItems: ctx.maxQueued ?? 16,
      maxBytes: 4 * 1024 * 1024,
      sizeOf: () => 1,
      run: async (q) => {
        let body: CommandReply;
        try {
          body = await this.run(q.cmd);
        } catch (e) {
          ctx.log.error({ err: e, id: q.cmd.id }, 'command handling failed');
          body = commandError(q.cmd.id, 'internal error');
        } finally {
          q.done();
        }
        await this.send(q.route, body);
      },
      log: ctx.log,
    });
  }

  get queued(): number {
    return this.queue.length;
  }

  get queueHighWater(): number {
    return this.queue.highWater;
  }

  stop(): void {
    this.queue.stop();
  }

  async idle(): Promise<void> {
    await this.queue.idle();
  }

  /** Takes one request: refused at once, or queued to run. Never throws. */
  handle(topic: string, payload: Uint8Array, props: { responseTopic?: string; correlationData?: Buffer } = {}): void {
    const { ctx } = this;
    const trust = ctx.trust();
    // Signed mode: the MQTT 5 response topic is not covered by the signature, so whoever can
    // publish on the cmd topic could redirect a signed command's answer (a screenshot) to a topic
    // it reads. Only the signed replyTo counts, else the device's own result topic; the
    // correlation data is still echoed (it routes nothing).
    const responseTopic = trust ? undefined : props.responseTopic;
    const routeFor = (replyTo: string | undefined): ReplyRoute => {
      const t = responseTopic ?? replyTo ?? ctx.defaultReplyTopic;
      return props.correlationData !== undefined && props.responseTopic !== undefined ? { topic: t, correlationData: props.correlationData } : { topic: t };
    };
    const d = decodeCommand(payload, ctx.target, trust, ctx.clock.now());
    if (!d.ok) {
      ctx.rejected.note(topic, d.reason);
      const s = trust ? { id: null } : salvage(payload);
      // Nobody to tell without an id or an explicit reply address.
      if (s.id !== null || props.responseTopic !== undefined) void this.send(routeFor(s.replyTo), commandError(s.id, d.reason));
      return;
    }
    const route = routeFor(d.doc.replyTo);
    const early = this.refuseEarly(d.doc);
    if (early !== undefined) {
      void this.send(route, commandError(d.doc.id, early));
      return;
    }
    const turn = this.limiter.admit(d.doc.name);
    if (!turn.ok) {
      this.stats.limited++;
      ctx.rejected.note(topic, `${d.doc.name}: ${turn.error}`);
      void this.send(route, commandError(d.doc.id, turn.error));
      return;
    }
    if (!this.queue.push({ cmd: d.doc, route, done: turn.done })) {
      turn.done();
      this.stats.dropped++;
      ctx.rejected.dropped(topic);
      void this.send(route, commandError(d.doc.id, 'busy: too many commands waiting; not run'));
      return;
    }
    this.remember(d.doc.id);
  }

  /** The answer to a command that must not spend a token or a queue slot, if any. */
  private refuseEarly(cmd: CommandRequest): string | undefined {
    if (this.recent.has(cmd.id)) return 'duplicate command id';
    if (cmd.expiresAt !== undefined && Date.parse(cmd.expiresAt) <= this.ctx.clock.now()) return `expired at ${cmd.expiresAt}`;
    if (!Object.hasOwn(handlers, cmd.name)) return `unknown command "${clip(cmd.name, 64)}"`;
    return undefined;
  }

  private remember(id: string): void {
    this.recent.add(id);
    if (this.recent.size > RECENT_IDS) {
      const oldest = this.recent.values().next();
      if (!oldest.done) this.recent.delete(oldest.value);
    }
  }

  /** At most `maxReplies` in flight: a flood of requests with ids cannot queue a flood of publishes. */
  private async send(route: ReplyRoute, body: CommandReply): Promise<void> {
    if (this.replies >= (this.ctx.maxReplies ?? 16)) {
      this.stats.repliesDropped++;
      this.ctx.log.debug({ id: body.id }, 'command reply not sent: too many replies in flight');
      return;
    }
    this.replies++;
    try {
      await this.ctx.reply(route, body);
    } catch (e) {
      this.ctx.log.warn({ err: e, id: body.id }, 'command reply not sent');
    } finally {
      this.replies--;
    }
  }

  private async run(cmd: CommandRequest): Promise<CommandReply> {
    const { ctx } = this;
    const now = ctx.clock.now();
    if (cmd.expiresAt !== undefined && Date.parse(cmd.expiresAt) <= now) {
      return commandError(cmd.id, `expired at ${cmd.expiresAt}`);
    }
    const handler = Object.hasOwn(handlers, cmd.name) ? handlers[cmd.name] : undefined;
    if (!handler) return commandError(cmd.id, `unknown command "${clip(cmd.name, 64)}"`);
    const host = ctx.host();
    if (!host) return commandError(cmd.id, 'agent not ready');
    if (!(await ctx.store.claimCommand(cmd.id, now))) return commandError(cmd.id, 'duplicate command id');
    ctx.log.info({ id: cmd.id, name: cmd.name }, 'command');
    try {
      const result = await handler(cmd.args ?? {}, host, now);
      return commandOk(cmd.id, result ?? {});
    } catch (e) {
      return commandError(cmd.id, clip(String((e as Error)?.message ?? e), 500));
    }
  }
}
