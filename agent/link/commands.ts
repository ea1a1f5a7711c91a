import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/log.js';
import { commandSchema, idSchema, localDateSchema, type CommandRequest } from '../core/schemas.js';
import type { Store } from '../store/store.js';
import { clip, decodeDocument, type Decoded } from './decode.js';
import type { KeyRing } from './envelope.js';
import type { LinkHost } from './link.js';

// PROTOCOL §7. Order of checks: decode → expiry → known name → at-most-once claim → run.
// A command that cannot be decoded is also a `rejected` event (§3), and still answered when
// its id or a response topic can be found, so the caller is not left waiting.

export interface CommandReply {
  id: string | null;
  ok: boolean;
  result?: unknown;
  error?: string;
}

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
};

export const COMMAND_NAMES = Object.keys(handlers);

/** Pure and total. A signed command must carry expiresAt (§9). */
export function decodeCommand(payload: Uint8Array, target: string, keys: KeyRing | undefined): Decoded<CommandRequest> {
  const r = decodeDocument(payload, commandSchema, target, keys);
  if (r.ok && keys && r.doc.expiresAt === undefined) return { ok: false, reason: 'signed command must carry expiresAt' };
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
  keys: KeyRing | undefined;
  target: string;
  defaultReplyTopic: string;
  host(): LinkHost | undefined;
  reply(route: ReplyRoute, body: CommandReply): Promise<void>;
  recordRejected(topic: string, reason: string): Promise<void>;
}

export class CommandRunner {
  constructor(private readonly ctx: CommandContext) {}

  /** Runs one request; resolves with the reply sent (or that would have been sent). Never rejects. */
  async handle(topic: string, payload: Uint8Array, props: { responseTopic?: string; correlationData?: Buffer } = {}): Promise<CommandReply> {
    const { ctx } = this;
    let body: CommandReply;
    let route: ReplyRoute | undefined;
    const routeFor = (replyTo: string | undefined): ReplyRoute => {
      const t = props.responseTopic ?? replyTo ?? ctx.defaultReplyTopic;
      return props.correlationData !== undefined && props.responseTopic !== undefined ? { topic: t, correlationData: props.correlationData } : { topic: t };
    };
    try {
      const d = decodeCommand(payload, ctx.target, ctx.keys);
      if (!d.ok) {
        await ctx.recordRejected(topic, d.reason);
        const s = ctx.keys ? { id: null } : salvage(payload);
        body = { id: s.id, ok: false, error: d.reason };
        // Nobody to tell without an id or an explicit reply address.
        route = s.id !== null || props.responseTopic !== undefined ? routeFor(s.replyTo) : undefined;
      } else {
        route = routeFor(d.doc.replyTo);
        body = await this.run(d.doc);
      }
    } catch (e) {
      ctx.log.error({ err: e, topic }, 'command handling failed');
      body = { id: null, ok: false, error: 'internal error' };
    }
    if (route) {
      try {
        await ctx.reply(route, body);
      } catch (e) {
        ctx.log.warn({ err: e, id: body.id }, 'command reply not sent');
      }
    }
    return body;
  }

  private async run(cmd: CommandRequest): Promise<CommandReply> {
    const { ctx } = this;
    const now = ctx.clock.now();
    if (cmd.expiresAt !== undefined && Date.parse(cmd.expiresAt) <= now) {
      return { id: cmd.id, ok: false, error: `expired at ${cmd.expiresAt}` };
    }
    const handler = Object.hasOwn(handlers, cmd.name) ? handlers[cmd.name] : undefined;
    if (!handler) return { id: cmd.id, ok: false, error: `unknown command "${clip(cmd.name, 64)}"` };
    const host = ctx.host();
    if (!host) return { id: cmd.id, ok: false, error: 'agent not ready' };
    if (!(await ctx.store.claimCommand(cmd.id, now))) return { id: cmd.id, ok: false, error: 'duplicate command id' };
    ctx.log.info({ id: cmd.id, name: cmd.name }, 'command');
    try {
      const result = await handler(cmd.args ?? {}, host, now);
      return { id: cmd.id, ok: true, result: result ?? {} };
    } catch (e) {
      return { id: cmd.id, ok: false, error: clip(String((e as Error)?.message ?? e), 500) };
    }
  }
}
