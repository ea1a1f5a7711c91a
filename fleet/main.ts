#!/usr/bin/env -S node --max-semi-space-size=64
// signage-fleet's entry point, and the only module of fleet/ that touches the process: argv, env,
// signals, exit codes, stdio. Exit codes: 0 ok, 1 a failure at run time, 2 bad usage or config.
import path from 'node:path';
import { isPostgresUrl } from './archive/open.js';
import { runReport } from './cli/report-cmd.js';
import { missingServeFlags } from './cli/node-flags.js';
import { parseCommand, UsageError, USAGE } from './cli/usage.js';
import { FleetConfigError, loadFleetConfig } from './config.js';
import { createLogger } from './log.js';
import { FleetService } from './service.js';

const VERSION = '0.1.0';

async function main(argv: string[]): Promise<number> {
  let cmd;
  try {
    cmd = parseCommand(argv);
  } catch (e) {
    if (e instanceof UsageError) { process.stderr.write(`signage-fleet: ${e.message}\n${USAGE}`); return 2; }
    throw e;
  }
  if (cmd.name === 'help') { process.stdout.write(USAGE); return 0; }
  if (cmd.name === 'version') { process.stdout.write(`${VERSION}\n`); return 0; }
  if (cmd.name === 'simulate-fleet') return simulateFleet(cmd.args);
  if (cmd.name === 'report') {
    try {
      process.stdout.write(await runReport(cmd));
      return 0;
    } catch (e) {
      process.stderr.write(`signage-fleet report: ${(e as Error).message}\n`);
      return 1;
    }
  }
  let config;
  try {
    config = loadFleetConfig(cmd.config);
    // --db wins over the config's db; a relative file is the caller's, read from the working directory.
    if (cmd.db) config = { ...config, db: isPostgresUrl(cmd.db) ? cmd.db : path.resolve(cmd.db) };
  } catch (e) {
    if (e instanceof FleetConfigError) { process.stderr.write(`signage-fleet: bad config ${cmd.config}: ${e.problems.join('; ')}\n`); return 2; }
    throw e;
  }
  const log = createLogger(process.env.LOG_LEVEL ?? config.log.level);
  const missing = missingServeFlags(process.execArgv, process.env.NODE_OPTIONS ?? '');
  if (missing.length > 0) {
    log.warn({ missing }, `started without ${missing.join(' ')}: the ingest runs slower (GC pauses; docs/fleet.md). Run: node ${missing.join(' ')} ${path.relative(process.cwd(), process.argv[1] ?? 'dist/fleet/main.js')} serve ...`);
  }
  const service = new FleetService(config, log);
  try {
    await service.start();
  } catch (e) {
    log.fatal({ err: (e as Error).message }, 'signage-fleet could not start');
    return 1;
  }
  return await new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (sig: NodeJS.Signals): void => {
      if (stopping) { process.exit(1); }
      stopping = true;
      log.info({ signal: sig }, 'stopping');
      service.stop().then(() => resolve(0), (e: unknown) => { log.error({ err: (e as Error).message }, 'stop failed'); resolve(1); });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

/** Loaded only here: the simulator brings the agent's engine, store and link, which `serve` never needs. */
async function simulateFleet(args: string[]): Promise<number> {
  const { runSimulateFleet } = await import('./sim/cli.js');
  const abort = new AbortController();
  const onSignal = (): void => abort.abort();
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    const r = await runSimulateFleet(args, {
      out: (line) => process.stdout.write(`${line}\n`),
      log: createLogger(process.env.LOG_LEVEL ?? 'warn'),
      rss: () => ({ now: process.memoryUsage().rss, peak: process.resourceUsage().maxRSS * 1024 }),
      signal: abort.signal,
    }, `${VERSION}-sim`);
    return r.playsUnsent > 0 ? 1 : 0;
  } catch (e) {
    if (e instanceof UsageError) { process.stderr.write(`signage-fleet simulate-fleet: ${e.message}\n${USAGE}`); return 2; }
    process.stderr.write(`signage-fleet simulate-fleet: ${(e as Error).message}\n`);
    return 1;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (e: unknown) => { process.stderr.write(`signage-fleet: ${(e as Error).stack ?? String(e)}\n`); process.exitCode = 1; },
);
