import { readFileSync } from 'node:fs';
import { Archive } from './archive/archive.js';
import type { FleetConfig } from './config.js';
import { Batcher } from './ingest/batcher.js';
import { MqttIngest } from './ingest/ingest.js';
import type { Logger } from './log.js';

interface Component {
  name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * `signage-fleet serve`: the archive, then the ingest (which needs the archive open before the
 * broker sends the session's queued messages). Stopped in reverse; a failed start stops what started.
 */
export class FleetService {
  readonly archive: Archive;
  readonly batcher: Batcher;
  readonly ingest: MqttIngest;
  private started: Component[] = [];

  constructor(readonly config: FleetConfig, private readonly log: Logger) {
    this.archive = new Archive(config.db, log.child({ component: 'archive' }), config.mqtt.clientId);
    this.batcher = new Batcher((items) => this.archive.write(items), config.batch, log.child({ component: 'batcher' }));
    const password = config.mqtt.passwordFile ? readFileSync(config.mqtt.passwordFile, 'utf8').trim() : undefined;
    this.ingest = new MqttIngest(config.mqtt, password, this.batcher, log.child({ component: 'ingest' }));
  }

  async start(): Promise<void> {
    const parts: Component[] = [
      { name: 'archive', start: async () => { await this.archive.start(); await this.archive.setGroups(this.config.groups); }, stop: () => this.archive.stop() },
      { name: 'ingest', start: () => this.ingest.start(), stop: () => this.ingest.stop() },
    ];
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
    this.log.info({ clientId: this.config.mqtt.clientId, shareGroup: this.config.mqtt.shareGroup }, 'signage-fleet serving');
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
