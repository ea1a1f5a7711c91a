import type { IClientOptions, MqttClient } from 'mqtt';

// Ack-after-commit on mqtt.js. mqtt.js handles incoming packets one at a time and sends a QoS 1
// PUBACK from inside that pipeline: holding `customHandleAcks`' callback until a commit would stall
// every later packet of the connection (one message per transaction). So the callback is answered
// at once with DEFERRED, which lets the pipeline go on *without* a PUBACK (mqtt.js's failed-custom-
// ack path: no PUBACK, an 'error' event that the ingest ignores for DEFERRED), and the PUBACK is
// written by `PubackWriter` on the client's (public) `stream` once the batch holding the message has
// committed.
//
// Holding the callback is still how the ingest pushes back when it must: an arrival that returns a
// promise (the batcher is over its high-water mark) gets its callback when the promise settles, and
// until then mqtt.js reads no further packet, TCP's window fills and the broker stops sending. The
// broker's own flow control (our Receive Maximum) should make that rare, but mosquitto 2.0.11
// (Debian 12's) stops honouring it once a reconnected session's first PUBACKs arrive and sends the
// whole queued backlog at once (100,000 plays: all in the process's memory; fixed upstream in 2.0.13).

export const DEFERRED = new Error('PUBACK deferred until the archive commits');

/** Takes a message; a promise returned means "read nothing more until it settles". */
export type Arrival = (topic: string, payload: Buffer, messageId: number | undefined) => Promise<void> | undefined;

/** customHandleAcks for QoS 1 (and 2, which the ingest never subscribes with): hand over, ack later. */
export function deferredAcks(onArrival: Arrival): Pick<IClientOptions, 'customHandleAcks'> {
  return {
    customHandleAcks: (topic, message, packet: { messageId?: number }, cb) => {
      const hold = onArrival(topic, message, packet.messageId);
      if (hold) void hold.then(() => cb(DEFERRED), () => cb(DEFERRED));
      else cb(DEFERRED);
    },
  };
}

type AckStream = MqttClient['stream'];

/**
 * A commit's PUBACKs in one write. mqtt.js's own PUBACK is three stream writes, so a 1,000-message
 * batch cost 3,000 writes, ~7 % of the event loop in a profile of the ingest; this one buffer took
 * 3-5 µs a play off the ingest's CPU and raised its drain rate 8-16 % (issue 11).
 * The PUBACK of a success without properties is four bytes in MQTT 3.1.1 and 5 alike (0x40, length
 * 2, packet id; v5 lets a 0 reason code be left out), so they are laid side by side and written at
 * the end of the tick, in the order given, on the stream they were given for.
 */
export class PubackWriter {
  private ids: number[] = [];
  private stream: AckStream | undefined;

  /** Queues the PUBACK of `messageId` on the connection `client` has now. */
  add(client: MqttClient, messageId: number): void {
    const stream = client.stream;
    if (this.stream !== stream) this.flush();
    this.stream = stream;
    if (this.ids.push(messageId) === 1) process.nextTick(() => this.flush());
  }

  flush(): void {
    const { stream, ids } = this;
    this.ids = [];
    this.stream = undefined;
    // A connection gone meanwhile: the broker sends those messages again to the next one.
    if (!stream || ids.length === 0 || stream.destroyed || !stream.writable) return;
    const buf = Buffer.allocUnsafe(ids.length * 4);
    for (let i = 0; i < ids.length; i++) {
      buf[i * 4] = 0x40;
      buf[i * 4 + 1] = 2;
      buf.writeUInt16BE(ids[i]!, i * 4 + 2);
    }
    stream.write(buf);
  }
}
