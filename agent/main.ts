#!/usr/bin/env node
// The only module that touches the process: argv, env, signals, exit codes.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from './config/config.js';
import { SystemClock } from './core/clock.js';
import { createLogger, silentLogger, type Logger } from './core/log.js';
import { HELP, MAIN_HELP, UsageError } from './cli/usage.js';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

function configOf(args: string[]): Config {
  const { values } = parseArgs({ args, options: { config: { type: 'string' } }, strict: false });
  if (typeof values.config !== 'string') throw new UsageError('--config PATH is required');
  return loadConfig(values.config, process.getuid?.() === 0);
}

async function run(config: Config): Promise<number> {
  const { buildAgent, runLogger } = await import('./cli/run-cmd.js');
  const { log, ring } = runLogger(config, { level: process.env.LOG_LEVEL ?? 'info', pretty: process.env.LOG_PRETTY === '1' });
  // An update switched releases: stop cleanly and exit; systemd (Restart=always) starts `current`.
  let restartFor: (reason: string) => void = () => undefined;
  // Taken out of the environment (sd_notify's unset_environment) so no child inherits them: with
  // them, a probe helper sent its own ERRNO= to our unit (seen in notify.test.ts), and mpv or a
  // helper could claim READY/WATCHDOG if the unit ever went back to NotifyAccess=all.
  const notifySocket = process.env.NOTIFY_SOCKET;
  const watchdogUsec = process.env.WATCHDOG_USEC;
  delete process.env.NOTIFY_SOCKET;
  delete process.env.WATCHDOG_USEC;
  delete process.env.WATCHDOG_PID;
  const agent = buildAgent(config, log, {
    ...(ring ? { logRing: ring } : {}),
    requestRestart: (reason) => restartFor(reason),
    notifySocket,
    watchdogUsec,
    desktop: Boolean(process.env.DISPLAY || process.env.WAYLAND_DISPLAY),
    agentVersion: VERSION,
    // The health probes parse timedatectl's and vcgencmd's words: the C locale, whatever the box's.
    commandEnv: { ...process.env, LC_ALL: 'C' },
  });
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection (kept running)'));
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'uncaught exception; exiting for the supervisor to restart us');
    process.exit(1);
  });
  let stopping: Promise<number> | undefined;
  const stop = (signal: string): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    log.info({ signal }, 'stopping');
    stopping = agent.stop().then(
      () => 0,
      (err: unknown) => {
        log.error({ err }, 'stop failed');
        return 1;
      },
    );
    void stopping.then((code) => process.exit(code));
  };
  restartFor = (reason) => stop(`restart: ${reason}`);
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  try {
    await agent.start();
  } catch (err) {
    log.fatal({ err }, 'agent failed to start');
    await agent.stop().catch(() => undefined);
    // Exit now: a half-started component may still hold a handle; systemd restarts us.
    process.exit(1);
  }
  // Runs until a signal ends the process.
  return new Promise<number>(() => undefined);
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const out = (s: string): void => void process.stdout.write(s + '\n');
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    out(MAIN_HELP);
    return cmd === undefined ? 2 : 0;
  }
  if (cmd === '--version' || cmd === '-v') {
    out(VERSION);
    return 0;
  }
  if (!(cmd in HELP)) throw new UsageError(`unknown command '${cmd}' (try --help)`);
  if (rest.includes('--help') || rest.includes('-h')) {
    out(HELP[cmd]!);
    return 0;
  }
  const config = configOf(rest);
  const quiet: Logger = process.env.LOG_LEVEL ? createLogger({ level: process.env.LOG_LEVEL }) : silentLogger();
  // Each command loads only its own modules: `plan` need not load mpv, MQTT or systeminformation.
  switch (cmd) {
    case 'run':
      return run(config);
    case 'plan':
      return (await import('./cli/plan-cmd.js')).planCommand(rest, config, { out, log: quiet, clock: new SystemClock() });
    case 'simulate':
      return (await import('./cli/simulate-cmd.js')).simulateCommand(rest, config, { out, log: quiet });
    case 'doctor':
      return (await import('./cli/doctor.js')).runDoctor({ config, log: quiet, out, desktop: Boolean(process.env.DISPLAY || process.env.WAYLAND_DISPLAY) });
    default:
      throw new UsageError(`unknown command '${cmd}'`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigError) {
      for (const p of err.problems) process.stderr.write(`config: ${p.replace(/^config: /, '')}\n`);
      process.exitCode = 2;
    } else if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`${(err as Error).message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`error: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = 1;
    }
  },
);
