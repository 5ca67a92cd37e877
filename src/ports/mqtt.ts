/**
 * MQTT as one capability offers it to another (edge provides it, v2x consumes it). With the embedded
 * broker, subscribed messages are handed over in-process (no loopback client) and never reach the
 * telemetry intake; with an external broker they come through edge's client connection.
 */

/**
 * Who published a message or acknowledged a delivery, as the embedded broker authenticated it.
 * `device` and `vehicle` (the vehicle id bound at the device's registration) are set for device-token
 * sessions only; `user` for static users; all null for anonymous clients.
 */
export interface MqttPeer {
  clientId: string;
  device: string | null;
  vehicle: string | null;
  user: string | null;
}

/**
 * Called synchronously per message; must not throw and should not block. `from` is the publisher
 * (embedded broker), or undefined when the broker does not say (external broker: its own topic
 * ACLs are what binds a topic to a client). `contentType` is the MQTT 5 Content Type property
 * when the publisher set one.
 */
export type MqttHandler = (
  topic: string,
  payload: Buffer,
  from: MqttPeer | undefined,
  contentType?: string,
) => void;

export interface MqttPublishOptions {
  qos: 0 | 1;
  /**
   * QoS 1: give up waiting for the acknowledgement after this long (the promise rejects); default
   * 5000 ms. The message may still be delivered later: callers retry and receivers deduplicate.
   */
  timeoutMs?: number;
  /**
   * QoS 1, embedded broker: only a PUBACK from a session this accepts resolves the publish (v2x:
   * the vehicle's own); any other subscriber's PUBACK is ignored. An external broker's PUBACK
   * comes from the broker, which names no session: there this option has no effect.
   */
  acceptAck?: (peer: MqttPeer) => boolean;
}

export interface MqttPort {
  readonly mode: 'embedded' | 'external';
  /**
   * Whether the port can carry messages now: embedded, the broker's listener is open; external, the
   * client is connected to the broker. Users report it in their readiness.
   */
  readonly connected: boolean;
  /**
   * Hands messages on these filters to `handler` instead of the telemetry path. Returns an
   * unsubscribe function. Filters take effect for messages published after the call.
   */
  subscribe(filters: readonly string[], handler: MqttHandler): () => void;
  /**
   * Publishes a message. QoS 1 resolves on a subscriber's PUBACK (embedded broker: the first
   * subscriber that acknowledges this message) or the broker's PUBACK (external broker, which is
   * all a client can see); QoS 0 resolves once handed to the broker.
   */
  publish(topic: string, payload: Buffer, opts: MqttPublishOptions): Promise<void>;
}
