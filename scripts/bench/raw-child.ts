import mqtt, { type MqttClient } from 'mqtt';

// The fleet-ingest bench's raw baseline, in a process of its own: a persistent MQTT 5 session on
// its own share group that counts plays and acks each at once (mqtt.js's defaults). Why a process:
// the ingest runs with `serve`'s V8 flags (fleet/cli/node-flags.ts), and a raw subscriber in the
// same process would run with them too: a flag chosen for the ingest, which the baseline has no
// business getting (it measured lower with it in four bench pairs of five, in the harness within
// the noise).
// Here it runs as plain `node` does. Driven over IPC by fleet-ingest.ts:
// connect → {connected} (the count starts at 0), reach n → {count} once n plays have come on that
// connection, stop → {stopped}.

type Command = { cmd: 'connect'; url: string; clientId: string; topic: string; receiveMaximum: number } | { cmd: 'reach'; n: number } | { cmd: 'stop' };

let client: MqttClient | undefined;
let n = 0;
/** Answer `reach` the moment the count gets there (no polling, so no lag in the drain's time). */
let target = Infinity;
const reply = (m: object): void => void process.send?.(m);

process.on('message', (m: Command) => {
  switch (m.cmd) {
    case 'connect': {
      // The handler before CONNECT: a queued backlog starts flowing right after CONNACK.
      n = 0;
      const c = mqtt.connect(m.url, { protocolVersion: 5, clientId: m.clientId, clean: false, properties: { sessionExpiryInterval: 3600, receiveMaximum: m.receiveMaximum } });
      client = c;
      c.on('message', (topic) => {
        if (topic.includes('/probe/') || ++n < target) return;
        target = Infinity;
        reply({ count: n });
      });
      c.once('connect', () => {
        c.subscribeAsync(m.topic, { qos: 1 }).then(() => reply({ connected: true }), (e: Error) => reply({ error: e.message }));
      });
      c.once('error', (e) => reply({ error: e.message }));
      break;
    }
    case 'reach':
      if (n >= m.n) reply({ count: n });
      else target = m.n;
      break;
    case 'stop':
      void (client?.endAsync() ?? Promise.resolve()).then(() => reply({ stopped: true }));
      client = undefined;
      break;
  }
});
process.on('disconnect', () => process.exit(0));
