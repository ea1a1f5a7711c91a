#!/usr/bin/env node
// Entry point of signage-agent-firstboot.service (via /opt/signage-agent/bin/signage-firstboot).
// Usage: firstboot-import --boot DIR [--boot DIR]... --etc DIR [--user signage] [--no-card]
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger } from '../agent/core/log.js';
import { errorCard, showErrorCard } from '../agent/provision/error-card.js';
import { importBootConfig, lookupUser } from '../agent/provision/firstboot.js';

const USAGE = `usage: firstboot-import --boot DIR [--boot DIR]... --etc DIR [--user NAME] [--no-card]
Imports signage-agent.json and signage-agent.{mqtt.pass,ca.crt,client.crt,client.key} from the
first boot directory holding them into --etc, validated; a bad file is shown on the screen.`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      boot: { type: 'string', multiple: true, default: ['/boot/firmware', '/boot'] },
      etc: { type: 'string', default: '/etc/signage-agent' },
      user: { type: 'string', default: 'signage' },
      'no-card': { type: 'boolean', default: false },
      'run-dir': { type: 'string', default: '/run/signage-firstboot' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const log = createLogger();
  const isRoot = process.getuid?.() === 0;
  const owner = isRoot ? lookupUser(values.user) : undefined;
  if (isRoot && !owner) log.warn({ user: values.user }, 'user not found: imported files stay owned by root');
  const result = await importBootConfig({
    bootDirs: values.boot,
    etcDir: values.etc,
    log,
    ...(owner ? { owner } : {}),
    showError: async (lines, previous) => {
      if (values['no-card']) return;
      // As root, mpv runs as the service user (error-card.ts); never as root, even without one.
      if (isRoot && !owner) {
        log.warn({ user: values.user }, 'the error card is not shown: mpv would run as root');
        return;
      }
      // With a good previous config the agent takes the screen over shortly; without one the
      // card is all the installer will see, so it stays longer.
      const seconds = previous ? 30 : 300;
      const card = errorCard({ lines, seconds, workDir: path.join(values['run-dir'], 'card'), ...(owner ? { runAs: owner } : {}), mpvPath: previous?.player.mpvPath, playerArgs: previous?.player.args.length ? previous.player.args : undefined });
      const code = await showErrorCard(card, seconds);
      if (code !== 0) log.warn({ code }, 'could not show the error card on the screen');
    },
  });
  return result.status === 'rejected' ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`firstboot-import: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
