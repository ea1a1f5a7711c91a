import { z } from 'zod';

// PROTOCOL §11 (v1.1): the display schedule an assignment may carry. Times are local wall
// clock (the config's timezone), HH:MM. Unknown keys are stripped like everywhere else (§3).

const HHMM_RE = /^([01]\d|2[0-3]):([0-5]\d)$/;
export const hhmmSchema = z.string().regex(HHMM_RE, 'must be HH:MM (00:00 to 23:59)');

/** Seconds of day of a checked `HH:MM`. */
export function secondsOfHhmm(s: string): number {
  const m = HHMM_RE.exec(s);
  if (!m) throw new RangeError(`not HH:MM: ${s}`);
  return Number(m[1]) * 3600 + Number(m[2]) * 60;
}

/** A power window: on at `on`, off at `off`; `off` before `on` means the next day (overnight). */
export const powerWindowSchema = z
  .object({ on: hhmmSchema, off: hhmmSchema })
  .refine((w) => w.on !== w.off, { message: 'on and off must differ (leave display.power out for a screen that is always on)', path: ['off'] });

/** From `from` on (until the next level of the same day) the output runs at `pct` percent. */
export const brightnessLevelSchema = z.object({ from: hhmmSchema, pct: z.number().min(0).max(100) });

export const displayScheduleSchema = z
  .object({
    power: z.array(powerWindowSchema).min(1).max(24).optional(),
    brightness: z.array(brightnessLevelSchema).min(1).max(48).optional(),
    /** ISO weekdays (1 = Monday) on which the power windows open; on the others the screen stays in standby. */
    weekdays: z.array(z.number().int().min(1).max(7)).min(1).max(7).optional(),
  })
  .refine((d) => !d.brightness || new Set(d.brightness.map((b) => b.from)).size === d.brightness.length, {
    message: 'two brightness levels start at the same time',
    path: ['brightness'],
  });

export type DisplaySchedule = z.infer<typeof displayScheduleSchema>;
export type PowerWindow = z.infer<typeof powerWindowSchema>;
export type BrightnessLevel = z.infer<typeof brightnessLevelSchema>;
