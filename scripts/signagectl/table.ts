// Plain text tables and CSV for the operator's terminal and spreadsheets.
//
// Every cell may hold what a screen sent (campaign ids, URLs, error texts), and a screen may be
// an attacker's (issue 10: one stolen card). Nothing it sends may drive the operator's terminal
// (ESC/CSI sequences retitle the window, rewrite earlier lines, or on some terminals answer back
// into the input) or run as a formula when the CSV is opened in a spreadsheet.

/**
 * C0 and C1 controls and DEL (ESC, the 8-bit CSI U+009B, BEL, carriage return...), and the bidi
 * overrides and isolates that make a line read other than its bytes ("Trojan Source").
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** What JSON.stringify leaves raw inside strings (it escapes C0 itself; its own newlines are layout). */
const UNSAFE_IN_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** `s` with every terminal control shown as a visible `\u{..}` escape instead of acted on. */
export function termSafe(s: string): string {
  return s.replace(UNSAFE, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`);
}

/**
 * JSON for a terminal: JSON.stringify already escapes C0 controls but passes C1 controls and
 * bidi marks through as raw characters; escape those too (still valid JSON, same value).
 */
export function jsonForTerminal(v: unknown): string {
  return JSON.stringify(v, null, 2).replace(UNSAFE_IN_JSON, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** One-line JSON for a terminal, escaped as jsonForTerminal is. */
export function jsonLineForTerminal(v: unknown): string {
  return JSON.stringify(v).replace(UNSAFE_IN_JSON, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function renderTable(header: string[], rawRows: string[][]): string[] {
  const rows = rawRows.map((r) => r.map(termSafe));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)];
}

/**
 * One CSV record. A text cell that a spreadsheet would read as a formula (= + - @, or a tab or
 * carriage return before one) gets a leading apostrophe (OWASP's CSV-injection advice): shown as
 * text, never evaluated. Numbers and booleans are ours, never prefixed (-1 stays a number).
 */
export function csvLine(cells: Array<string | number | boolean>): string {
  return cells
    .map((c) => {
      let s = typeof c === 'string' ? termSafe(c) : String(c);
      if (typeof c === 'string' && /^[=+\-@\t\r]/.test(c)) s = `'${s}`;
      return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
    })
    .join(',');
}

/** "12s", "4m", "3h", "2d" ago. */
export function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 90) return `${s}s`;
  if (s < 90 * 60) return `${Math.round(s / 60)}m`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}
