#!/usr/bin/env node
// `npm run release -- --key op.key`: the agent as one signed tarball (issue 13 item 1).
import { parseArgs } from 'node:util';
import { buildRelease, RELEASE_HELP } from './release/build.js';

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    key: { type: 'string' },
    'key-id': { type: 'string' },
    version: { type: 'string' },
    out: { type: 'string' },
    'no-build': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  process.stdout.write(RELEASE_HELP + '\n');
} else {
  buildRelease({
    repo: process.cwd(),
    key: values.key,
    keyId: values['key-id'],
    version: values.version,
    out: values.out ?? 'release',
    build: !values['no-build'],
    arch: process.arch,
    nodeAbi: process.versions.modules,
    log: (s) => process.stderr.write(s + '\n'),
  }).then(
    (r) => process.stdout.write(JSON.stringify(r) + '\n'),
    (e: Error) => {
      process.stderr.write(`release: ${e.message}\n`);
      process.exitCode = 1;
    },
  );
}
