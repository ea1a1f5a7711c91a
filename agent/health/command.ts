import { execFile } from 'node:child_process';

/** Runs a program (no shell) and resolves with its stdout; rejects on a non-zero exit, ENOENT or timeout. */
export type RunCommand = (cmd: string, args: string[]) => Promise<string>;

/**
 * The real RunCommand: bounded in time and output so a hung tool cannot stall a heartbeat. `env`
 * is the programs' whole environment, handed down from main.ts (the only module that reads the
 * process), which sets LC_ALL=C so their output parses the same in every locale; without it
 * they inherit the agent's.
 */
export function execCommand(timeoutMs = 3000, env?: Readonly<Record<string, string | undefined>>): RunCommand {
  return (cmd, args) =>
    new Promise((resolve, reject) => {
      execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 64 * 1024, encoding: 'utf8', ...(env ? { env } : {}) }, (err, stdout) => {
        if (err) reject(err);
        else resolve(stdout);
      });
    });
}

/** True when the error means "the program is not installed" (as opposed to "it failed"). */
export function isMissingBinary(e: unknown): boolean {
  return (e as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}
