import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, waitForPort } from './ports.js';

export interface Broker {
  port: number;
  url: string;
  /** SIGTERM and wait for exit. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit: the broker vanishes without closing anything cleanly. */
  kill(): Promise<void>;
  /** Start again on the same port (after stop/kill). Nothing retained survives: persistence is off. */
  restart(): Promise<void>;
  /** Sends a signal to the running broker (SIGSTOP freezes it with its sockets open: a dead link). */
  signal(sig: NodeJS.Signals): void;
  /** Stop for good and remove its temp dir (done by the test's teardown when `t` was given). */
  dispose(): Promise<void>;
}

interface Teardownable {
  teardown(fn: () => unknown): void;
}

/**
 * A private mosquitto 2 on a free 127.0.0.1 port, torn down with the test.
 * max_queued_messages 0: the default 1000 silently drops QoS 1 messages to slow subscribers.
 */
export async function startBroker(t?: Teardownable, extraConfig: string[] = []): Promise<Broker> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mosq-'));
  let port = 0;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let log = '';

  const writeConf = (): string => {
    const file = path.join(dir, 'mosquitto.conf');
    const lines = [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence false',
      'max_queued_messages 0',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      ...(process.getuid?.() === 0 ? ['user root'] : []),
      ...extraConfig,
    ];
    writeFileSync(file, lines.join('\n') + '\n');
    return file;
  };

  const launch = async (): Promise<void> => {
    const conf = writeConf();
    const c = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = c;
    c.stderr?.on('data', (d: Buffer) => { log = (log + d.toString()).slice(-4000); });
    exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    const died = exited.then(() => { throw new Error(`mosquitto exited on start: ${log}`); });
    await Promise.race([waitForPort(port), died]);
  };

  const halt = async (signal: NodeJS.Signals): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    c.kill(signal);
    await exited;
    child = undefined;
  };

  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try {
      await launch();
      break;
    } catch (e) {
      if (attempt >= 4) throw e;
    }
  }

  const broker: Broker = {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    stop: async () => {
      child?.kill('SIGCONT');
      await halt('SIGTERM');
    },
    signal: (sig) => {
      child?.kill(sig);
    },
    dispose: async () => {
      await broker.stop();
      rmSync(dir, { recursive: true, force: true });
    },
    kill: () => halt('SIGKILL'),
    restart: async () => {
      child?.kill('SIGCONT');
      await halt('SIGTERM');
      // The port may linger for a moment after a kill; retry the bind briefly.
      for (let attempt = 0; ; attempt++) {
        try {
          await launch();
          return;
        } catch (e) {
          if (attempt >= 20) throw e;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    },
  };
  t?.teardown(() => broker.dispose());
  return broker;
}

/**
 * Config lines for a broker whose anonymous clients are refused the subscriptions in
 * `denySubscribe` (SUBACK 0x87). mosquitto 2.0.11's `acl_file` grants every SUBSCRIBE and
 * filters at delivery instead, so only the dynamic-security plugin gives a real refusal.
 * Anonymous clients may also publish to `$CONTROL/dynamic-security/v1`, so a test can lift a
 * denial at run time (see liftSubscribeDenial).
 */
export function denySubscriptionsConfig(dir: string, denySubscribe: string[]): string[] {
  const file = path.join(dir, 'dynsec.json');
  const acls = [
    ...denySubscribe.map((topic) => ({ acltype: 'subscribePattern', topic, priority: 0, allow: false })),
    { acltype: 'publishClientSend', topic: '$CONTROL/dynamic-security/#', priority: 0, allow: true },
  ];
  writeFileSync(
    file,
    JSON.stringify({
      defaultACLAccess: { publishClientSend: true, publishClientReceive: true, subscribe: true, unsubscribe: true },
      clients: [],
      groups: [{ groupname: 'anon', roles: [{ rolename: 'fleet' }] }],
      roles: [{ rolename: 'fleet', acls }],
      anonymousGroup: 'anon',
    }),
  );
  return ['plugin /usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so', `plugin_opt_config_file ${file}`];
}

/** The dynamic-security command that lifts one denial made by denySubscriptionsConfig. */
export function liftSubscribeDenial(topic: string): string {
  return JSON.stringify({ commands: [{ command: 'removeRoleACL', rolename: 'fleet', acltype: 'subscribePattern', topic }] });
}
