import type { IClientOptions, MqttClient } from 'mqtt';

// Ack-after-commit on mqtt.js. mqtt.js handles incoming packets one at a time and sends a QoS 1
// PUBACK from inside that pipeline: holding `customHandleAcks`' callback until a commit would stall
// every later packet of the connection (one message per transaction). So the callback is answered
// at once with DEFERRED, which lets the pipeline go on *without* a PUBACK (mqtt.js's failed-custom-
// ack path: no PUBACK, an 'error' event that the ingest ignores for DEFERRED), and the PUBACK is
// sent by `puback` once the batch holding the message has committed. mqtt 5.16's `_sendPacket` is
// the one private name used; `assertManualAcks` fails the start if a later mqtt.js lacks it.

export const DEFERRED = new Error('PUBACK deferred until the archive commits');

export type Arrival = (topic: string, payload: Buffer, messageId: number | undefined) => void;

/** customHandleAcks for QoS 1 (and 2, which the ingest never subscribes with): hand over, ack later. */
export function deferredAcks(onArrival: Arrival): Pick<IClientOptions, 'customHandleAcks'> {
  return {
    customHandleAcks: (topic, message, packet: { messageId?: number }, cb) => {
      onArrival(topic, message, packet.messageId);
      cb(DEFERRED);
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

/** The PUBACK (success) of one QoS 1 message, on the client's current connection. */
export function puback(client: MqttClient, messageId: number): void {
  (client as unknown as PacketSender)._sendPacket({ cmd: 'puback', messageId, reasonCode: 0 });
}
