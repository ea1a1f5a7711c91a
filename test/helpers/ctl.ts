import mqtt, { type MqttClient } from 'mqtt';
import type { Test } from 'tap';
import { main } from '../../scripts/signagectl/cli.js';

/** signagectl run in-process with its output captured, as an operator's terminal would show it (not a TTY). */
export async function ctl(argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (l) => out.push(l), err: (l) => err.push(l), isTTY: false });
  return { code, out, err };
}

/** A plain MQTT 5 client on the test's broker, closed at teardown. */
export async function client(t: Test, url: string): Promise<MqttClient> {
  const c = await mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 0 });
  t.teardown(() => c.endAsync());
  return c;
}
