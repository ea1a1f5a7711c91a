// Help texts of the CLI (PROTOCOL §1). Kept apart so every command's --help reads the same way.

export const MAIN_HELP = `signage-agent — plays campaigns on a public screen at the ordered frequency, over mpv and MQTT.

Usage:
  signage-agent run --config PATH                 the daemon (until SIGTERM/SIGINT)
  signage-agent plan --config PATH [--date D] [--assignment FILE] [--json]
  signage-agent simulate --config PATH --assignment FILE --from D --days N [--outage HH:MM-HH:MM]... [--alert HH:MM-HH:MM]... [--json]
  signage-agent doctor --config PATH              checks this box; non-zero exit on a failure
  signage-agent --version | --help
  signage-agent COMMAND --help                    help of one command

Exit codes: 0 ok, 1 failure, 2 bad config or bad arguments (one line per problem on stderr).`;

export const HELP: Record<string, string> = {
  run: `Usage: signage-agent run --config PATH

Runs the agent: mpv on the screen, the MQTT link, the local frequency engine. Stops on SIGTERM/SIGINT:
mpv is stopped, the store flushed, exit 0. Under systemd (Type=notify) it reports READY, WATCHDOG and STOPPING.
Environment: LOG_LEVEL (default info), LOG_PRETTY=1 for human-readable logs.`,
  plan: `Usage: signage-agent plan --config PATH [--date YYYY-MM-DD] [--assignment FILE] [--json]

Prints the day's plan: each campaign's target and slots, and a text timeline of the day.
  --date D           plan that local day from its start with nothing played (its ideal plan);
                     without it, today is planned from now with the plays already counted
  --assignment FILE  plan this assignment (JSON, PROTOCOL §4) instead of what the agent has applied
  --json             machine-readable output`,
  simulate: `Usage: signage-agent simulate --config PATH --assignment FILE --from YYYY-MM-DD --days N [--outage HH:MM-HH:MM]... [--alert HH:MM-HH:MM]... [--json]

Runs the real engine and store on a virtual clock with a simulated player (no mpv, no broker) and prints each
day's compliance per campaign.
  --outage HH:MM-HH:MM  a power cut at that local time on every simulated day (repeatable; 23:00-01:00 spans midnight)
  --alert HH:MM-HH:MM   an emergency alert (PROTOCOL §10) holding the screen then on every simulated day: what it
                        costs the day's targets (campaigns are re-planned around it, as on a screen)
  --json                an array of {"day","campaignId","played","target","onTrack"}`,
  doctor: `Usage: signage-agent doctor --config PATH

Checks mpv and its output, the HDMI connector, power/throttling, dataDir, clock sync and timezone, the broker,
the media cache and the systemd unit. One line per check; exit 1 if any check fails.`,
};

/** Bad arguments: exit 2 with the message. */
export class UsageError extends Error {}
