import type { IClientOptions, MqttClient } from 'mqtt';

// Ack-after-commit on mqtt.js. mqtt.js handles incoming packets one at a time and sends a QoS 1
// PUBACK from inside that pipeline: holding `customHandleAcks`' callback until a commit would stall
// every later packet of the connection (one message per transaction). So the callback is answered
// at once with DEFERRED, which lets the pipeline go on *without* a PUBACK (mqtt.js's failed-custom-
// ack path: no PUBACK, an 'error' event that the ingest ignores for DEFERRED), and the PUBACK is
// sent by `puback` once the batch holding the message has committed. mqtt 5.16's `_sendPacket` is
// the one private name used; `assertManualAcks` fails the start if a later mqtt.js lacks it.
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

interface PacketSender {
  _sendPacket(packet: { cmd: 'puback'; messageId: number; reasonCode: number }, cb?: () => void): void;
}

export function assertManualAcks(client: MqttClient): void {
  if (typeof (client as unknown as Partial<PacketSender>)._sendPacket !== 'function') {
    throw new Error('this mqtt.js has no _sendPacket: ack-after-commit cannot work (pin mqtt ^5.16)');
  }
}

/**
 * The PUBACK (success) of one QoS 1 message, on the client's current connection. A commit acks its
 * whole batch in one go: the socket is corked until the end of the tick, so those hundreds of
 * PUBACKs leave in one write instead of a syscall each.
 */
export function puback(client: MqttClient, messageId: number): void {
  const stream = (client as unknown as { stream?: { cork?(): void; uncork?(): void; writableCorked?: number } }).stream;
  if (stream?.cork && stream.uncork && !stream.writableCorked) {
    stream.cork();
    process.nextTick(() => stream.uncork?.());
  }
  (client as unknown as PacketSender)._sendPacket({ cmd: 'puback', messageId, reasonCode: 0 });
}
