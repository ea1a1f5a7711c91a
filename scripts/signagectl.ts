#!/usr/bin/env node
// The signagectl bin (package.json): wires the process to scripts/signagectl/cli.ts.
import { main } from './signagectl/cli.js';

main(process.argv.slice(2), {
  out: (l) => process.stdout.write(l + '\n'),
  err: (l) => process.stderr.write(l + '\n'),
  isTTY: process.stdout.isTTY === true,
  write: (s) => process.stdout.write(s),
}).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`signagectl: ${String(e)}\n`);
    process.exitCode = 1;
  },
);
