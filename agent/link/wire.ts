import type { Delivery as PublishOpts } from '../protocol/encode.js';

/** The one thing publishers need from the connection. Implemented by MqttLink over mqtt.js. */
export interface Wire {
  connected(): boolean;
  /**
   * Publishes on the current connection. Resolves with the MQTT 5 PUBACK reason code (0 for
   * QoS 0, 0x10 "no matching subscribers", which mqtt.js itself reports as plain success);
   * rejects when not connected, when the connection is lost before the ack, or on an error code.
   */
  publish(topic: string, payload: string | Buffer, opts: PublishOpts): Promise<number>;
}

/** The protocol's publish options (QoS, retain, MQTT 5 correlation data), so typed publishes fit the wire as is. */
export type { Delivery as PublishOpts } from '../protocol/encode.js';

export const RC_NO_MATCHING_SUBSCRIBERS = 0x10;
