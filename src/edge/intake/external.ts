import type { MqttClient } from 'mqtt';
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
  /**
   * Messages taken in and not yet acknowledged, at most: sent as MQTT 5 Receive Maximum (the
   * broker's in-flight window towards Kapok); with MQTT 3.1.1 the broker's own setting decides and
   * Kapok stops reading the socket at this many.
   */
  receiveMaximum: number;
  ingest: Ingest;
  logger: Logger;
  /** Filters tapped through the MQTT port: subscribed (QoS 0) and handed over, never spooled. */
  taps?: Taps;
}

/** One network connection's intake state: acknowledgements go back on the connection they came in on. */
interface Conn {
  stream: NodeJS.WritableStream & { destroy(): void; destroyed?: boolean };
  /** Taken in, not yet acknowledged (stored or not). */
  pending: number;
  /** mqtt.js's packet-loop continuation, held while the window is full. */
  held: (() => void) | null;
  /** Packet ids stored since the last PUBACK write. */
  acks: number[];
  closed: boolean;
}

/**
 * Passed to mqtt.js's handleMessage callback: mqtt.js then sends no PUBACK of its own and goes on
 * to the next packet (mqtt 5.x publish handler: `if (err) return done(err)`; the external-mode
 * tests count PUBACKs on the wire, so a change there fails them). Kapok writes the PUBACKs itself.
 */
const NO_PUBACK = new Error('acknowledged by Kapok after the spool append');

/** MQTT 3.1.1 CONNACK "unacceptable protocol version" and MQTT 5 "unsupported protocol version". */
const PROTOCOL_REFUSED = new Set([1, 132]);

/**
 * External mode: Kapok as a client of Mosquitto/EMQX with a persistent session (clean: false,
 * fixed client id) and QoS 1 subscriptions, MQTT 5 first (falling back to 3.1.1 once for a broker
 * that refuses it).
 *
 * Throughput (issue 24): mqtt.js hands over one packet at a time and sends its PUBACK when
 * handleMessage calls back, so waiting there for the spool made every message its own spool
 * transaction and event-loop turn (~8,800 msg/s). Instead handleMessage lets mqtt.js go on at once
 * without a PUBACK, every message read in one turn lands in one spool transaction (Ingest's group
 * commit), and the PUBACKs of that transaction go out in one socket write after it committed.
 * Never before: a message is acknowledged only once durably in the spool. What the broker may
 * have in flight is bounded by Receive Maximum (MQTT 5; Mosquitto and EMQX honour it), and in
 * any version Kapok stops reading at receiveMaximum unacknowledged messages.
 *
 * A message that cannot be stored (spool full with onFull reject, disk error) is not acknowledged:
 * Kapok drops the connection and the broker redelivers from the session. Acknowledgements of a
 * connection that closed are not sent on the next one (the broker redelivers those messages,
 * flagged DUP; stored twice at worst, never lost). Reconnects back off exponentially from
 * reconnectMinMs to reconnectMaxMs.
 */
export class ExternalClient {
  readonly #o: ExternalClientOptions;
  #client: MqttClient | undefined;
  #period: number;
  #conn: Conn | null = null;
  #flushScheduled = false;
  connected = false;
  lastError: string | null = null;
  /** 5 until a broker refuses it, then 4 (MQTT 3.1.1). */
  protocolVersion: 4 | 5 = 5;

  constructor(o: ExternalClientOptions) {
    if (!/^(mqtts?|wss?|tcp|ssl):\/\//.test(o.url))
      throw new Error('edge.mqtt.url must start with mqtt://, mqtts://, ws:// or wss://');
    if (!Number.isInteger(o.receiveMaximum) || o.receiveMaximum < 1 || o.receiveMaximum > 65_535)
      throw new Error('edge.mqtt.receiveMaximum must be an integer from 1 to 65535');
    this.#o = o;
    this.#period = o.reconnectMinMs;
  }

  async start(): Promise<void> {
    const o = this.#o;
    // Imported here: mqtt.js is only needed in external mode, and the edge capability always loads this file.
    const { default: mqtt } = await import('mqtt');
    const client = mqtt.connect(o.url, {
      clientId: o.clientId,
      clean: false,
      protocolVersion: 5,
      // Without it Mosquitto sends a v5 client only max_inflight_messages (20 by default) at once.
      // sessionExpiryInterval: the v5 equivalent of a 3.1.1 persistent session (kept until taken over).
      properties: { receiveMaximum: o.receiveMaximum, sessionExpiryInterval: 0xffffffff },
      reconnectPeriod: this.#period,
      // A refused CONNACK (wrong credentials, protocol version) is retried with the backoff too.
      reconnectOnConnackError: true,
      connectTimeout: 10_000,
    });
    this.#client = client;
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
      if (packet.qos === 2) {
        // Not subscribed at QoS 2 (the broker downgrades to 1); mqtt.js's own path if it comes.
        o.ingest.submit(topic, packet.payload as Buffer, (err) => {
          if (err) this.#notStored(client.stream, err);
          else callback();
        });
        return;
      }
      const stream = client.stream as unknown as Conn['stream'];
      // Parsed before its connection dropped: the broker redelivers it, so it is not stored now.
      if (stream.destroyed) return callback(NO_PUBACK);
      const conn = this.#connOf(stream);
      const id = packet.messageId;
      conn.pending++;
      o.ingest.submit(topic, packet.payload as Buffer, (err) =>
        this.#stored(conn, packet.qos === 1 ? id : undefined, err),
      );
      if (conn.pending < o.receiveMaximum) callback(NO_PUBACK);
      else conn.held = () => callback(NO_PUBACK);
    };
    client.on('connect', (connack) => {
      this.connected = true;
      this.lastError = null;
      this.#period = o.reconnectMinMs;
      client.options.reconnectPeriod = this.#period;
      o.logger.info(
        {
          clientId: o.clientId,
          sessionPresent: connack.sessionPresent,
          protocolVersion: this.protocolVersion,
          brokerReceiveMaximum: connack.properties?.receiveMaximum,
        },
        'edge mqtt connected',
      );
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
      this.#closeConn();
      this.#period = Math.min(o.reconnectMaxMs, this.#period * 2);
      client.options.reconnectPeriod = this.#period;
    });
    client.on('error', (err) => {
      const code = (err as { code?: unknown }).code;
      if (this.protocolVersion === 5 && typeof code === 'number' && PROTOCOL_REFUSED.has(code)) {
        // A 3.1.1-only broker: the next attempt (reconnectOnConnackError) speaks 3.1.1.
        this.protocolVersion = 4;
        client.options.protocolVersion = 4;
        delete client.options.properties;
        o.logger.warn(
          { reason: err.message },
          'edge mqtt broker refused MQTT 5; using MQTT 3.1.1 (set its max_inflight_messages for the in-flight window)',
        );
        return;
      }
      this.lastError = err.message;
      o.logger.warn({ reason: err.message }, 'edge mqtt client error');
    });
  }

  /** The intake state of `stream`; a new connection retires the previous one's. */
  #connOf(stream: Conn['stream']): Conn {
    if (this.#conn?.stream === stream) return this.#conn;
    this.#closeConn();
    this.#conn = { stream, pending: 0, held: null, acks: [], closed: false };
    return this.#conn;
  }

  /** Its acknowledgements are dropped (the broker redelivers); mqtt.js's old packet loop ends. */
  #closeConn(): void {
    const c = this.#conn;
    if (!c) return;
    this.#conn = null;
    c.closed = true;
    c.acks.length = 0;
    const held = c.held;
    c.held = null;
    held?.();
  }

  /** The spool append of one message finished; `id` undefined for QoS 0 (nothing to acknowledge). */
  #stored(conn: Conn, id: number | undefined, err: Error | null): void {
    conn.pending--;
    if (conn.closed) return;
    if (err) {
      conn.closed = true;
      this.#notStored(conn.stream, err);
      return;
    }
    if (id !== undefined) {
      conn.acks.push(id);
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        // After the rest of this commit's acknowledgements (Ingest calls them in one loop).
        queueMicrotask(() => this.#flushAcks());
      }
    }
    if (conn.held && conn.pending < this.#o.receiveMaximum) {
      const held = conn.held;
      conn.held = null;
      held();
    }
  }

  /** One socket write for all PUBACKs of a group commit (4 bytes each; valid in 3.1.1 and 5). */
  #flushAcks(): void {
    this.#flushScheduled = false;
    const c = this.#conn;
    if (!c || c.closed || c.acks.length === 0) return;
    const ids = c.acks;
    c.acks = [];
    if (c.stream.destroyed) return;
    const buf = Buffer.allocUnsafe(ids.length * 4);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i] as number;
      buf[i * 4] = 0x40; // PUBACK
      buf[i * 4 + 1] = 2; // remaining length: the packet id
      buf.writeUInt16BE(id, i * 4 + 2);
    }
    c.stream.write(buf);
  }

  /**
   * Not stored (spool full with onFull reject, or a disk error): no PUBACK. Cut the connection so
   * the broker keeps the message in the session and redelivers it later.
   */
  #notStored(stream: unknown, err: Error): void {
    this.#o.logger.warn(
      { reason: err.message },
      'edge mqtt message not stored; reconnecting without acknowledging',
    );
    (stream as Conn['stream'] | undefined)?.destroy();
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
