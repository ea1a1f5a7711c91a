#!/usr/bin/env node
// provisioning/prepare-card runs this (after `npm run build`): see scripts/prepare-card/cli.ts.
import { prepareCardCli } from './prepare-card/cli.js';

prepareCardCli(process.argv.slice(2), { out: (l) => process.stdout.write(l + '\n'), err: (l) => process.stderr.write(l + '\n') }).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`prepare-card: ${String(e)}\n`);
    process.exitCode = 1;
  },
);
