import { z } from 'zod';
import { displayScheduleSchema } from './display-schema.js';

// Wire schemas of PROTOCOL §4, §5, §7. One definition serves the MQTT decoders,
// the CLI's --assignment files and signagectl's pre-publish validation.
//
// Objects are z.object (unknown keys stripped), never z.strictObject: PROTOCOL v1.1 §3 lets a
// newer operator tool add optional fields, and rejecting them would silence a fleet of older
// agents. Stripping (rather than passing through) keeps what is stored and compared to the
// fields this agent understands. Known fields keep their full type and range checks.

export const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const idSchema = z.string().regex(ID_RE, 'must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$');

const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
export const localDateSchema = z.string().refine((s) => {
  const m = DATE_RE.exec(s);
  if (!m) return false;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return d.toISOString().slice(0, 10) === s;
}, 'must be a real date YYYY-MM-DD');

const TIME = '([01]\\d|2[0-4]):([0-5]\\d)(?::([0-5]\\d))?';
export const WINDOW_RE = new RegExp(`^${TIME}-${TIME}$`);

/** Seconds of day of `HH:MM[:SS]`; 24:00 allowed only as an end. */
export function parseWindow(s: string): { start: number; end: number } | undefined {
  const m = WINDOW_RE.exec(s);
  if (!m) return undefined;
  const sec = (h?: string, mi?: string, se?: string): number => Number(h) * 3600 + Number(mi) * 60 + Number(se ?? 0);
  const start = sec(m[1], m[2], m[3]);
  const end = sec(m[4], m[5], m[6]);
  if (start >= 86400 || end > 86400 || end <= start) return undefined;
  return { start, end };
}

export const windowSchema = z
  .string()
  .refine((s) => parseWindow(s) !== undefined, 'must be HH:MM[:SS]-HH:MM[:SS] with end after start (24:00 allowed as end)');

export const sha256Schema = z.string().regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex digits').transform((s) => s.toLowerCase());

export const mediaUrlSchema = z
  .string()
  .max(4096)
  .refine((s) => /^(https?|file):\/\/./.test(s), 'must be an http://, https:// or file:// URL');

export const mediaSchema = z.object({
  url: mediaUrlSchema,
  sha256: sha256Schema,
  durationMs: z.number().int().positive().max(3_600_000).optional(),
});

// Up to one play a second over a whole day; more is a typo, not a campaign.
const timesPerDaySchema = z.number().int().min(0).max(86_400);

export const campaignSchema = z
  .object({
    id: idSchema,
    media: mediaSchema,
    startDate: localDateSchema.optional(),
    endDate: localDateSchema.optional(),
    timesPerDay: timesPerDaySchema,
    windows: z.array(windowSchema).min(1).max(48).optional(),
    weekdays: z.array(z.number().int().min(1).max(7)).min(1).max(7).optional(),
    priority: z.number().int().min(-1000).max(1000).optional(),
  })
  .refine((c) => !c.startDate || !c.endDate || c.startDate <= c.endDate, {
    message: 'startDate must not be after endDate',
    path: ['endDate'],
  });

// RFC 3339 instants. Without Z or an offset a time would be read in the box's system
// timezone, which is not the configured one (PROTOCOL v1.1 §5), so those are refused by name.
const withOffset = z.iso.datetime({ offset: true });
const withoutOffset = z.iso.datetime({ local: true });
export const instantSchema = z
  .string()
  .max(64)
  .superRefine((s, ctx) => {
    if (withOffset.safeParse(s).success) return;
    ctx.addIssue({
      code: 'custom',
      message: withoutOffset.safeParse(s).success
        ? "must carry Z or a UTC offset (e.g. 2024-09-01T00:00:00+07:00): without one it would be read in the box's system timezone"
        : 'must be an RFC 3339 instant YYYY-MM-DDTHH:MM:SS[.fff] with Z or a UTC offset ±HH:MM',
    });
  });

const versionSchema = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
// `fleet` is the §10 fleet alert's target (`{p}/fleet/alert`); the topic's target decides which fits.
const targetSchema = z.string().regex(/^((device|group)\/[A-Za-z0-9][A-Za-z0-9._-]{0,63}|fleet)$/).optional();
// §9 v1.1: when the document was signed. Optional here (plain mode is unchanged); the signed
// decode path requires it (decode.ts), so a signed document always says when it was issued.
const issuedAtSchema = instantSchema.optional();

export const assignmentSchema = z
  .object({
    version: versionSchema,
    campaigns: z.array(campaignSchema).max(500),
    loop: z.array(mediaSchema).max(200).optional(),
    target: targetSchema,
    issuedAt: issuedAtSchema,
    /** After this instant the assignment is refused on arrival and no longer in force (issue 10 item 4). */
    notAfter: instantSchema.optional(),
    /** §11 (v1.1): power windows and brightness levels of the screen. */
    display: displayScheduleSchema.optional(),
  })
  .refine((a) => new Set(a.campaigns.map((c) => c.id)).size === a.campaigns.length, {
    message: 'campaign ids must be unique',
    path: ['campaigns'],
  });

export const campaignOverrideSchema = z.object({
  timesPerDay: timesPerDaySchema.optional(),
  windows: z.array(windowSchema).min(1).max(48).optional(),
});

export const overrideSchema = z.object({
  version: versionSchema,
  campaigns: z.record(idSchema, campaignOverrideSchema),
  expiresAt: instantSchema.optional(),
  target: targetSchema,
  issuedAt: issuedAtSchema,
});

export const commandSchema = z.object({
  id: z.string().min(1).max(128),
  name: z.string().min(1).max(64),
  args: z.record(z.string(), z.unknown()).optional(),
  replyTo: z.string().min(1).max(512).refine((t) => !/[+#\u0000]/.test(t), 'must be a topic without wildcards').optional(),
  expiresAt: instantSchema.optional(),
  target: targetSchema,
  issuedAt: issuedAtSchema,
});

/** §10: an alert lasts at most this long after its startsAt. */
export const MAX_ALERT_MS = 24 * 3_600_000;

/**
 * PROTOCOL §10 alert. Exactly one of `media` (looped, or shown once every `repeatEverySec`) and
 * `text` (rendered full screen). `expiresAt` is required and at most 24 h after `startsAt`, so a
 * forgotten alert cannot hold a screen for days.
 */
export const alertSchema = z
  .object({
    version: versionSchema,
    /** Absent: this is an alert, not a clear (the discriminator of alertDocSchema). */
    clear: z.undefined().optional(),
    id: idSchema,
    media: z.object({ url: mediaUrlSchema, sha256: sha256Schema }).optional(),
    text: z.string().min(1).max(1000).optional(),
    startsAt: instantSchema,
    expiresAt: instantSchema,
    repeatEverySec: z.number().int().min(10).max(86_400).optional(),
    target: targetSchema,
    issuedAt: issuedAtSchema,
  })
  .superRefine((a, ctx) => {
    if ((a.media === undefined) === (a.text === undefined)) ctx.addIssue({ code: 'custom', path: ['media'], message: 'give exactly one of media {url, sha256} and text' });
    if (a.text !== undefined && a.text.trim() === '') ctx.addIssue({ code: 'custom', path: ['text'], message: 'must not be blank' });
    const from = Date.parse(a.startsAt);
    const to = Date.parse(a.expiresAt);
    if (!(to > from)) ctx.addIssue({ code: 'custom', path: ['expiresAt'], message: 'must be after startsAt' });
    else if (to - from > MAX_ALERT_MS) ctx.addIssue({ code: 'custom', path: ['expiresAt'], message: `must be at most 24 h after startsAt (is ${((to - from) / 3_600_000).toFixed(1)} h)` });
  });

/**
 * A signed clear (§9: signed screens refuse an unsigned empty payload): the next version and
 * `clear: true`, so it also outranks the alert it clears.
 */
export const alertClearSchema = z.object({ version: versionSchema, clear: z.literal(true), target: targetSchema, issuedAt: issuedAtSchema });

/** What an alert topic carries: an alert, or a (signed) clear. */
export const alertDocSchema = z.discriminatedUnion('clear', [alertClearSchema, alertSchema]);

// The domain types are these documents as decoded (core/types.ts re-exports them): one definition
// each, so a field added to the contract reaches every subsystem's types at once.
export type MediaRef = z.infer<typeof mediaSchema>;
export type Campaign = z.infer<typeof campaignSchema>;
export type Assignment = z.infer<typeof assignmentSchema>;
export type CampaignOverride = z.infer<typeof campaignOverrideSchema>;
export type Override = z.infer<typeof overrideSchema>;
export type CommandRequest = z.infer<typeof commandSchema>;
export type Alert = z.infer<typeof alertSchema>;
export type AlertDoc = z.infer<typeof alertDocSchema>;

/** Formats zod issues as `path: message`, one per problem. */
export function formatIssues(err: z.ZodError, prefix = ''): string[] {
  return err.issues.map((i) => {
    const path = [prefix, ...i.path.map(String)].filter(Boolean).join('.');
    return `${path || '(root)'}: ${i.message}`;
  });
}

/**
 * Paths of the keys in `input` that parsing dropped (fields this agent does not know). The
 * agent ignores them (v1.1 §3); an operator tool warns, since an unknown key is often a typo.
 */
export function droppedKeys(input: unknown, parsed: unknown, prefix = ''): string[] {
  if (Array.isArray(input) && Array.isArray(parsed)) return input.flatMap((v, i) => droppedKeys(v, parsed[i], `${prefix}${i}.`));
  if (!isPlainObject(input) || !isPlainObject(parsed)) return [];
  return Object.keys(input).flatMap((k) => (Object.hasOwn(parsed, k) ? droppedKeys(input[k], parsed[k], `${prefix}${k}.`) : [`${prefix}${k}`]));
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
