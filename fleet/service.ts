import { readFileSync } from 'node:fs';
import { Archive } from './archive/archive.js';
import type { FleetConfig } from './config.js';
import { CommandClient, readCommandSigner } from './http/commands.js';
import { NocServer, type MetricsSource } from './http/server.js';
import { Batcher } from './ingest/batcher.js';
import type { Item } from './ingest/decode.js';
import { MqttIngest } from './ingest/ingest.js';
import type { Logger } from './log.js';
import { FleetMetrics } from './metrics/metrics.js';

interface Component {
  name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Told after each committed batch, with the items it held (the NOC page's live updates). */
export type CommittedHook = (items: readonly Item[]) => void;

export interface FleetDeps {
  /** GET /metrics; default: this process's FleetMetrics over its archive, ingest and batcher. */
  metrics?: MetricsSource;
}

/**
 * `signage-fleet serve`: the archive, then the ingest (which needs the archive open before the
 * broker sends the session's queued messages), then the NOC page and its command client when
 * `http` is configured. Stopped in reverse; a failed start stops what started.
 */
export class FleetService {
  readonly archive: Archive;
  readonly batcher: Batcher;
  readonly ingest: MqttIngest;
  readonly http: NocServer | undefined;
  readonly commands: CommandClient | undefined;
  private readonly committed: CommittedHook[] = [];
  private started: Component[] = [];

  constructor(readonly config: FleetConfig, private readonly log: Logger, deps: FleetDeps = {}) {
    this.archive = new Archive(config.db, log.child({ component: 'archive' }), config.mqtt.clientId);
    this.batcher = new Batcher(async (items, next) => {
      const stats = await this.archive.write(items, new Date(), next);
      for (const h of this.committed) {
        try {
          h(items);
        } catch (e) {
          this.log.warn({ err: (e as Error).message }, 'a committed-batch hook failed');
        }
      }
      return stats;
    }, config.batch, log.child({ component: 'batcher' }));
    const password = config.mqtt.passwordFile ? readFileSync(config.mqtt.passwordFile, 'utf8').trim() : undefined;
    this.ingest = new MqttIngest(config.mqtt, password, this.batcher, log.child({ component: 'ingest' }), config.batch.maxRows);
    if (config.http) {
      const token = config.http.tokenFile ? readFileSync(config.http.tokenFile, 'utf8').trim() : undefined;
      const signer = config.http.commandKeyFile ? readCommandSigner(config.http.commandKeyFile, config.http.commandKeyId) : undefined;
      this.commands = new CommandClient(config.mqtt, password, log.child({ component: 'commands' }), signer);
      this.http = new NocServer(config.http, {
        archive: this.archive,
        commands: this.commands,
        log: log.child({ component: 'http' }),
        ...(token !== undefined ? { token } : {}),
        metrics: deps.metrics ?? new FleetMetrics(this.archive, { staleAfterSec: config.http.staleAfterSec, ingest: this.ingest, batcher: this.batcher }),
      });
      const live = this.http.live;
      this.onCommitted((items) => live.changed(new Set(items.map((i) => i.deviceId))));
    }
  }

  /** Subscribes to committed batches; the hook runs after the commit, before the acks. Keep it cheap. */
  onCommitted(hook: CommittedHook): void {
    this.committed.push(hook);
  }

  async start(): Promise<void> {
    const parts: Component[] = [
      { name: 'archive', start: async () => { await this.archive.start(); await this.archive.setGroups(this.config.groups); }, stop: () => this.archive.stop() },
      { name: 'ingest', start: () => this.ingest.start(), stop: () => this.ingest.stop() },
    ];
    const { commands, http } = this;
    if (commands) parts.push({ name: 'commands', start: () => commands.start(), stop: () => commands.stop() });
    if (http) parts.push({ name: 'http', start: () => http.start(), stop: () => http.stop() });
    for (const p of parts) {
      try {
        await p.start();
      } catch (e) {
        this.log.error({ component: p.name, err: (e as Error).message }, 'start failed');
        await this.stop();
        throw e;
      }
      this.started.push(p);
    }
    this.log.info({ clientId: this.config.mqtt.clientId, shareGroup: this.config.mqtt.shareGroup, ...(http ? { noc: http.url } : {}) }, 'signage-fleet serving');
  }

  async stop(): Promise<void> {
    const parts = this.started.reverse();
    this.started = [];
    for (const p of parts) {
      try {
        await p.stop();
      } catch (e) {
        this.log.error({ component: p.name, err: (e as Error).message }, 'stop failed');
      }
    }
  }
}
