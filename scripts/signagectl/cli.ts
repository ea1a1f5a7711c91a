import { alertCommand } from './alert.js';
import { brokerCommand } from './broker.js';
import { cmdCommand, reportCommand, screenshotCommand } from './cmd.js';
import { CliError, type Io } from './conn.js';
import { assignCommand, overrideCommand } from './desired.js';
import { keysCommand } from './keys.js';
import { logLevelCommand, logsCommand } from './logs.js';
import { keygenCommand, signConfigCommand } from './sign.js';
import { updateCommand } from './update.js';
import { watchCommand } from './watch.js';

export const MAIN_HELP = `signagectl — the operator's tool for a fleet of signage-agent screens (over MQTT).

Usage:
  signagectl assign   (--device ID | --group G) --file assignment.json    publish campaigns (next version)
  signagectl override (--device ID | --group G) --campaign C --times N [--windows W] [--expires +6h]
  signagectl override (--device ID | --group G) --clear
  signagectl alert    (--device ID | --group G | --fleet) --text T | --file F --expires +2h   emergency alert
  signagectl alert    (--device ID | --group G | --fleet) --clear
  signagectl cmd      --device ID NAME [--args JSON] [--out FILE]        run a command, print the answer
  signagectl screenshot --device ID --out FILE                           the screen's current frame (PNG)
  signagectl watch    [--once --for 5s]                                  live fleet table
  signagectl logs     --device ID [--since 15m] [--level warn] [--lines N] [--follow]   recent log lines
  signagectl log-level --device ID LEVEL [--for 30m]                     log level for a while
  signagectl report   [--date D] [--device ID | --all] [--csv]           a day's compliance
  signagectl broker   init-ca|add-device|revoke-device|add-operator       broker credentials and ACL
  signagectl keygen   --out DIR [--id ID]                                 an Ed25519 signing key pair
  signagectl keys     publish --root-key FILE --file keys.json            sign and publish the key set
  signagectl sign-config --config FILE --key FILE [--out FILE]            sign a config for a boot partition
  signagectl update   --group G --file signage-agent-V.tar.gz --key FILE --url-base URL [--canary 5%]
  signagectl COMMAND --help

Every command takes --config FILE (a JSON file with the agent-style "mqtt" object) or --url URL.
Publishing commands (assign, override, alert, cmd, screenshot, report, logs, log-level) take --key FILE [--key-id ID]
to sign for screens in signed mode (PROTOCOL §9).
Exit codes: 0 ok, 1 failed (no answer, ok:false, broker unreachable), 2 bad arguments or input.`;

const COMMANDS: Record<string, (argv: string[], io: Io) => Promise<number>> = {
  assign: assignCommand,
  override: overrideCommand,
  alert: alertCommand,
  cmd: cmdCommand,
  screenshot: screenshotCommand,
  watch: watchCommand,
  report: reportCommand,
  logs: logsCommand,
  'log-level': logLevelCommand,
  broker: brokerCommand,
  keygen: keygenCommand,
  keys: keysCommand,
  'sign-config': signConfigCommand,
  update: updateCommand,
};

/** Runs one signagectl invocation; never throws, returns the exit code. */
export async function main(argv: string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(MAIN_HELP);
    return name === undefined ? 2 : 0;
  }
  const run = COMMANDS[name];
  if (!run) {
    io.err(`signagectl: unknown command "${name}" (see signagectl --help)`);
    return 2;
  }
  try {
    return await run(rest, io);
  } catch (e) {
    if (e instanceof CliError) {
      for (const l of e.message.split('\n')) io.err(`signagectl ${name}: ${l}`);
      return e.exitCode;
    }
    // parseArgs' unknown/invalid option errors are usage errors too.
    const code = (e as { code?: string }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
      io.err(`signagectl ${name}: ${(e as Error).message} (see signagectl ${name} --help)`);
      return 2;
    }
    io.err(`signagectl ${name}: ${(e as Error).message}`);
    return 1;
  }
}
