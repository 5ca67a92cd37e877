import mqtt, { type MqttClient } from 'mqtt';
import { KapokError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { Ingest } from '../ingest.js';
import type { Taps } from './taps.js';

export interface ExternalClientOptions {
  url: string;
  clientId: string;
  topics: readonly string[];
  shareGroup: string | null;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  ingest: Ingest;
  logger: Logger;
  /** Filters tapped through the MQTT port: subscribed (QoS 0) and handed over, never spooled. */
  taps?: Taps;
}

/**
 * External mode: Kapok as a client of Mosquitto/EMQX with a persistent session (clean: false,
 * fixed client id) and QoS 1 subscriptions. PUBACKs are sent by hand (handleMessage) after the
 * spool append, so the broker keeps and redelivers whatever Kapok did not store. A full spool
 * (onFull reject) drops the connection instead of acknowledging; the broker holds the messages.
 * Reconnects back off exponentially from reconnectMinMs to reconnectMaxMs.
 */
export class ExternalClient {
  readonly #o: ExternalClientOptions;
  #client: MqttClient | undefined;
  #period: number;
  connected = false;
  lastError: string | null = null;

  constructor(o: ExternalClientOptions) {
    if (!/^(mqtts?|wss?|tcp|ssl):\/\//.test(o.url))
      throw new Error('edge.mqtt.url must start with mqtt://, mqtts://, ws:// or wss://');
    this.#o = o;
    this.#period = o.reconnectMinMs;
  }

  async start(): Promise<void> {
    const o = this.#o;
    const client = mqtt.connect(o.url, {
      clientId: o.clientId,
      clean: false,
      reconnectPeriod: this.#period,
      connectTimeout: 10_000,
    });
    this.#client = client;
    // mqtt.js sends the PUBACK of a QoS 1 message when handleMessage calls back (any protocol
    // version; customHandleAcks is MQTT 5 only), so the callback waits for the spool append.
    client.handleMessage = (packet, callback) => {
      const topic = typeof packet.topic === 'string' ? packet.topic : String(packet.topic);
      const tap = o.taps?.size ? o.taps.match(topic) : null;
      if (tap) {
        try {
          tap(topic, packet.payload as Buffer, undefined, packet.properties?.contentType);
        } catch (err) {
          o.logger.warn({ topic, reason: (err as Error).message }, 'mqtt tap handler threw');
        }
        return callback();
      }
      o.ingest.submit(topic, packet.payload as Buffer, (err) => {
        if (!err) return callback();
        // Not stored (spool full with onFull reject, or a disk error): no PUBACK. Cut the
        // connection so the broker keeps the message in the session and redelivers it later.
        o.logger.warn(
          { reason: err.message },
          'edge mqtt message not stored; reconnecting without acknowledging',
        );
        client.stream?.destroy();
      });
    };
    client.on('connect', (connack) => {
      this.connected = true;
      this.lastError = null;
      this.#period = o.reconnectMinMs;
      client.options.reconnectPeriod = this.#period;
      o.logger.info({ clientId: o.clientId, sessionPresent: connack.sessionPresent }, 'edge mqtt connected');
      this.subscribeTaps();
      if (!connack.sessionPresent) {
        const filters = o.topics.map((t) => (o.shareGroup ? `$share/${o.shareGroup}/${t}` : t));
        client.subscribe(filters, { qos: 1 }, (err) => {
          if (err) o.logger.error({ reason: err.message }, 'edge mqtt subscribe failed');
        });
      }
    });
    client.on('close', () => {
      if (this.connected)
        o.logger.warn({ retryInMs: this.#period }, 'edge mqtt connection closed; reconnecting');
      this.connected = false;
      this.#period = Math.min(o.reconnectMaxMs, this.#period * 2);
      client.options.reconnectPeriod = this.#period;
    });
    client.on('error', (err) => {
      this.lastError = err.message;
      o.logger.warn({ reason: err.message }, 'edge mqtt client error');
    });
  }

  /**
   * Subscribes the tapped filters at QoS 0 (again on every connect): stale V2X messages queued by
   * the broker while Kapok was away would only be dropped as stale.
   */
  subscribeTaps(): void {
    const filters = this.#o.taps?.filters ?? [];
    const c = this.#client;
    if (!c?.connected || filters.length === 0) return;
    c.subscribe(filters, { qos: 0 }, (err) => {
      if (err) this.#o.logger.error({ reason: err.message }, 'edge mqtt tap subscribe failed');
    });
  }

  /** QoS 1 resolves on the broker's PUBACK: an external broker hides the subscriber's. */
  publish(topic: string, payload: Buffer, qos: 0 | 1, timeoutMs: number): Promise<void> {
    const c = this.#client;
    if (!c?.connected)
      return Promise.reject(new KapokError('KAPOK_EDGE_MQTT', 'edge MQTT client is not connected'));
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new KapokError('KAPOK_EDGE_MQTT', `no PUBACK for ${topic} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      c.publish(topic, payload, { qos }, (err) => {
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      });
    });
  }

  async stop(): Promise<void> {
    const c = this.#client;
    if (c) await c.endAsync(false).catch(() => c.end(true));
  }
}
