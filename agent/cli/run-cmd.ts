import path from 'node:path';
import { Agent } from '../agent.js';
import { DEFAULT_ALERT_FONT, renderTextCard } from '../alerts/text-card.js';
import type { Config } from '../config/config.js';
import { SystemClock } from '../core/clock.js';
import { Listeners } from '../core/listeners.js';
import { createLogger, type Logger } from '../core/log.js';
import { LogLevelControl } from '../logs/level.js';
import { LogRing } from '../logs/ring.js';
import { LogService } from '../logs/service.js';
import { EventRecorder } from '../events/recorder.js';
import { ClockSync } from '../health/clock-sync.js';
import { execCommand } from '../health/command.js';
import { HealthSampler } from '../health/sampler.js';
import { Housekeeping } from '../housekeeping/housekeeping.js';
import { MqttLink } from '../link/link.js';
import { MediaCache } from '../media/cache.js';
import { INDEX_FILE } from '../media/index-file.js';
import { readDisplayState } from '../player/display.js';
import { MpvPlayer } from '../player/mpv-player.js';
import { buildDisplayParts } from '../display/parts.js';
import { SqliteStore } from '../store/sqlite-store.js';
import { SystemdNotifier } from '../systemd/notify.js';
import { signingKeyLookup } from '../protocol/trust.js';
import { runProgram } from '../update/run-program.js';
import { storeFileOf } from './paths.js';

export interface RunEnv {
  notifySocket?: string;
  watchdogUsec?: string;
  desktop: boolean;
  agentVersion: string;
  /** Ends the process for systemd to start it again (an update switched releases); main.ts's. */
  requestRestart?: (reason: string) => void;
  /** The environment of the helper programs the health probes run (timedatectl, vcgencmd): LC_ALL=C. */
  commandEnv?: Readonly<Record<string, string | undefined>>;
  /** The ring `runLogger` tees the log into, if any (config logs.ringKB > 0). */
  logRing?: LogRing;
}

/** The daemon's root logger: stdout, and the in-memory ring the `logs` command reads (issue 13). */
export function runLogger(config: Config, opts: { level: string; pretty: boolean }): { log: Logger; ring?: LogRing } {
  if (config.logs.ringKB === 0) return { log: createLogger(opts) };
  const ring = new LogRing(config.logs.ringKB * 1024);
  return { log: createLogger({ ...opts, tee: ring }), ring };
}

/** Builds the daemon's one context from a validated config: every side effect is chosen here. */
export function buildAgent(config: Config, log: Logger, env: RunEnv): Agent {
  const clock = new SystemClock();
  const bootedAt = clock.now();
  // recover: a store that cannot be opened is moved aside and replaced, never a crash loop with
  // a black screen; the media index shows that a missing store existed before.
  const store = new SqliteStore({
    file: storeFileOf(config),
    log: log.child({ component: 'store' }),
    clock,
    recover: true,
    evidence: [path.join(config.dataDir, 'media', INDEX_FILE)],
  });
  // Every part that raises an event records it here; the link wakes its outbox on each one.
  const events = new EventRecorder({ store, clock, log: log.child({ component: 'events' }) });
  // The agent is built after the cache and subscribes to this in its constructor.
  const mediaVerified = new Listeners<[string]>();
  const media = new MediaCache({
    dir: path.join(config.dataDir, 'media'),
    maxBytes: config.media.cacheMaxMB * 1024 * 1024,
    clock,
    log: log.child({ component: 'media' }),
    mpvPath: config.player.mpvPath,
    sources: config.media,
    minFreeBytes: config.media.minFreeMB * 1024 * 1024,
    events: {
      onVerified: (sha) => mediaVerified.emit(sha),
      onFailed: (ref, reason) => void events.record('media-failed', { url: ref.url, sha256: ref.sha256, reason }),
    },
  });
  const player = new MpvPlayer({
    mpvPath: config.player.mpvPath,
    args: config.player.args,
    log: log.child({ component: 'player' }),
    clock,
    screenshotDir: path.join(config.dataDir, 'tmp'),
    desktop: env.desktop,
    events: {
      onRestarted: (reason) => void events.record('player-restarted', { reason }),
      onOutputSuspect: (detail) => void events.record('output-suspect', detail),
    },
  });
  const displayParts = buildDisplayParts(config.display, { player, run: execCommand(5000, env.commandEnv) });
  const link = new MqttLink({ config, store, events, clock, log: log.child({ component: 'link' }), agentVersion: env.agentVersion, bootedAt });
  const notifier = new SystemdNotifier({ ...(env.notifySocket ? { socketPath: env.notifySocket } : {}), log: log.child({ component: 'systemd' }) });
  const watchdogMs = notifier.watchdogIntervalMs(env.watchdogUsec);
  // A text card renders in a few seconds on a Pi 4; two minutes is a hung ffmpeg.
  const ffmpeg = execCommand(120_000, env.commandEnv);
  const cards = { dir: path.join(config.dataDir, 'alerts'), fontFile: DEFAULT_ALERT_FONT, ffmpeg: (args: string[]) => ffmpeg('ffmpeg', args) };
  return new Agent({
    clock,
    store,
    events,
    link,
    player,
    log,
    config,
    media,
    mediaVerified,
    health: new HealthSampler({ dataDir: config.dataDir, log: log.child({ component: 'health' }), runCommand: execCommand(3000, env.commandEnv) }),
    clockSync: new ClockSync({ log: log.child({ component: 'clock' }), runCommand: execCommand(3000, env.commandEnv) }),
    housekeeping: new Housekeeping({ store, clock, log: log.child({ component: 'housekeeping' }), timezone: config.timezone, keepDays: config.history.keepDays }),
    notifier,
    ...(watchdogMs ? { watchdogMs } : {}),
    display: () => readDisplayState(),
    displayParts,
    logs: new LogService(env.logRing, new LogLevelControl({ logger: log, clock, log: log.child({ component: 'logs' }) })),
    renderAlertText: (text) => renderTextCard(cards, text),
    agentVersion: env.agentVersion,
    bootedAt,
    update: {
      releasesDir: config.update.releasesDir,
      stateDir: path.join(config.dataDir, 'update'),
      settings: config.update,
      sources: config.media,
      run: runProgram(120_000),
      keys: () => {
        const trust = link.trust();
        return trust && signingKeyLookup(trust, `device/${config.deviceId}`, 'update', clock.now());
      },
      requestRestart: env.requestRestart ?? ((reason) => log.warn({ reason }, 'restart requested but no one to restart the agent')),
    },
  });
}
