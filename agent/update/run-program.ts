import { execFile } from 'node:child_process';
import type { RunProgram } from './installer.js';

/** tar and friends with a time bound; the rejection carries the program's stderr. */
export function runProgram(timeoutMs: number): RunProgram {
  return (file, args) =>
    new Promise((resolve, reject) => {
      execFile(file, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
        if (err) reject(new Error(`${file} ${args[0] ?? ''}: ${stderr.trim() || err.message}`));
        else resolve(stdout);
      });
    });
}
