import type { IncomingMessage } from 'node:http';
import { createServer, type Server } from 'node:net';
import type { Duplex } from 'node:stream';
import { Aedes, type Client } from 'aedes';
import { createWebSocketStream, WebSocketServer } from 'ws';
import { KapokError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { topicMatches } from '../decode/topic.js';
import type { Ingest } from '../ingest.js';
import type { MqttAuthenticate, MqttIdentity } from './auth.js';
import type { Taps } from './taps.js';

export interface EmbeddedBrokerOptions {
  host: string;
  port: number;
  topics: readonly string[];
  ingest: Ingest;
  authenticate: MqttAuthenticate;
  /** Topic → device, to hold device-token clients to their own topics. Throws on a foreign topic. */
  deviceOf: (topic: string) => string;
  logger: Logger;
  /** Filters tapped through the MQTT port: handed over in-process, never to the telemetry intake. */
  taps?: Taps;
}

interface AwaitingAck {
  payload: Buffer;
  /** Deliveries (client id + packet id) of this publish awaiting a PUBACK. */
  keys: string[];
  resolve: () => void;
  fail: (err: Error) => void;
}

const identities = new WeakMap<Client, MqttIdentity>();
/** A token identity is re-checked (device revoked by another process?) at most this often. */
const RECHECK_MS = 1000;
const checkedAt = new WeakMap<Client, number>();

/**
 * The embedded broker: Aedes on TCP and, through handleUpgrade, on a WebSocket path of the main
 * HTTP port. Telemetry is taken in `authorizePublish`, which Aedes runs before it writes the
 * PUBACK: its callback fires only after the spool append committed, so an acknowledged message
 * is on disk. An error there closes an MQTT 3.1.1 connection (no PUBACK; the client resends).
 */
export class EmbeddedBroker {
  readonly #o: EmbeddedBrokerOptions;
  #broker: Aedes | undefined;
  #tcp: Server | undefined;
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: 256 * 1024 * 1024 });
  /** QoS 1 messages published through the port, by topic, until a subscriber's PUBACK. */
  readonly #awaiting = new Map<string, AwaitingAck[]>();
  readonly #byDelivery = new Map<string, AwaitingAck>();
  /** Payloads of port publishes (Aedes copies packets but keeps the payload buffer). */
  readonly #ours = new WeakSet<Buffer>();
  port = 0;

  constructor(o: EmbeddedBrokerOptions) {
    if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535)
      throw new Error('EmbeddedBroker: options.port must be 0..65535');
    this.#o = o;
  }

  async start(): Promise<void> {
    const o = this.#o;
    const broker = await Aedes.createBroker({
      authorizeForward: (client, packet) => {
        if (packet.qos === 0 || !this.#ours.has(packet.payload as Buffer)) return packet;
        const entry = this.#awaiting.get(packet.topic)?.find((a) => a.payload === packet.payload);
        if (!entry) return packet;
        // Give this delivery its packet id now (as Aedes' QoSPacket would, from the same counter)
        // so the subscriber's PUBACK can be matched to it.
        const c = client as unknown as { _nextId: number };
        const id = c._nextId;
        c._nextId = id >= 65535 ? 1 : id + 1;
        const key = `${client.id}\u0000${id}`;
        this.#byDelivery.set(key, entry);
        entry.keys.push(key);
        const copy = Object.assign(Object.create(Object.getPrototypeOf(packet)), packet);
        copy.messageId = id;
        return copy;
      },
      authenticate: (client, username, password, done) => {
        o.authenticate(username, password).then(
          (id) => {
            if (!id) {
              const err = new Error('bad username or password') as Error & { returnCode: number };
              err.returnCode = 4;
              return done(err, false);
            }
            identities.set(client, id);
            if (id.recheck) checkedAt.set(client, Date.now());
            done(null, true);
          },
          (err) => done(err, false),
        );
      },
      authorizePublish: (client, packet, done) => {
        if (!client) return done(null); // broker-internal publish ($SYS, wills)
        const topic = packet.topic;
        const tap = o.taps?.size ? o.taps.match(topic) : null;
        if (tap) {
          // Tapped (V2X): handed over synchronously, then relayed like any message (other OBUs
          // may subscribe); never spooled as telemetry.
          try {
            const props = (packet as { properties?: { contentType?: string } }).properties;
            tap(topic, packet.payload as Buffer, client.id, props?.contentType);
          } catch (err) {
            o.logger.warn({ topic, msg: (err as Error).message }, 'mqtt tap handler threw');
          }
          return done(null);
        }
        if (!o.topics.some((f) => topicMatches(f, topic))) return done(null); // not telemetry: plain relay
        const id = identities.get(client);
        if (id?.device != null) {
          let device: string | null = null;
          try {
            device = o.deviceOf(topic);
          } catch {}
          if (device !== id.device)
            return done(
              new KapokError('KAPOK_EDGE_NOT_AUTHORIZED', `device ${id.device} may not publish to ${topic}`),
            );
        }
        const ingest = () => {
          const raw = packet.payload as Buffer;
          // Oversized payloads go straight to intake, which dead-letters them: no decryption work.
          if (!id?.open || raw.length > o.ingest.maxPayloadBytes)
            return o.ingest.submit(topic, raw, (err) => done(err));
          id.open(topic, raw).then(
            (plain) => o.ingest.submit(topic, plain, (err) => done(err)),
            (err) => done(err),
          );
        };
        if (!id?.recheck) return ingest();
        const refuse = (why: string) =>
          done(
            new KapokError(
              'KAPOK_EDGE_NOT_AUTHORIZED',
              `device ${id.device}: ${why}; reconnect with a fresh token`,
            ),
          );
        if (id.expiresAt !== undefined && Date.now() >= id.expiresAt) return refuse('token expired');
        if (Date.now() - (checkedAt.get(client) ?? 0) < RECHECK_MS) return ingest();
        id.recheck().then(
          (ok) => {
            if (!ok) return refuse('token or device no longer valid');
            checkedAt.set(client, Date.now());
            ingest();
          },
          () => refuse('token check failed'),
        );
      },
    });
    // Subscriber PUBACKs of port publishes: Aedes reports the acked packet only for persistent
    // sessions, so the deliveries are numbered here (authorizeForward) and PUBACKs read off each
    // client's parser.
    broker.on('client', (client) => {
      const parser = (client as unknown as { _parser?: NodeJS.EventEmitter })._parser;
      parser?.on('packet', (p: { cmd: string; messageId?: number }) => {
        if (p.cmd !== 'puback' || this.#byDelivery.size === 0) return;
        const key = `${client.id}\u0000${p.messageId}`;
        const entry = this.#byDelivery.get(key);
        if (!entry) return;
        this.#byDelivery.delete(key);
        entry.resolve();
      });
    });
    broker.on('clientError', (client, err) =>
      o.logger.debug({ client: client.id, msg: err.message }, 'mqtt client error'),
    );
    this.#broker = broker;
    // noDelay: without it Nagle's algorithm holds small packets (a strategy, a PUBACK) up to 40 ms.
    const tcp = createServer({ noDelay: true }, (socket) => broker.handle(socket));
    this.#tcp = tcp;
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'EADDRINUSE')
          reject(
            new KapokError(
              'KAPOK_START_PORT_IN_USE',
              `edge.mqtt.port ${o.port} on ${o.host} is in use (another MQTT broker such as Mosquitto?): set edge.mqtt.port (KAPOK_EDGE__MQTT__PORT) to a free port, or set edge.mqtt.mode: external and edge.mqtt.url to consume from that broker`,
              { cause: err },
            ),
          );
        else
          reject(
            new KapokError(
              'KAPOK_EDGE_MQTT',
              `edge MQTT broker cannot listen on ${o.host}:${o.port}: ${err.message}`,
              { cause: err },
            ),
          );
      });
      tcp.listen(o.port, o.host, () => resolve());
    });
    const addr = tcp.address();
    this.port = typeof addr === 'object' && addr ? addr.port : o.port;
    o.logger.info({ host: o.host, port: this.port }, 'edge mqtt broker listening');
  }

  /**
   * Publishes from Kapok itself. QoS 1 resolves on the first subscriber PUBACK for this topic and
   * payload (Aedes' `ack` event), or rejects after timeoutMs (nobody subscribed, or nobody acked).
   */
  publish(topic: string, payload: Buffer, qos: 0 | 1, timeoutMs: number): Promise<void> {
    const broker = this.#broker;
    if (!broker) return Promise.reject(new KapokError('KAPOK_EDGE_MQTT', 'edge MQTT broker is not running'));
    return new Promise<void>((resolve, reject) => {
      const packet = { cmd: 'publish' as const, topic, payload, qos, retain: false, dup: false };
      if (qos === 0) {
        broker.publish(packet, (err) => (err ? reject(err) : resolve()));
        return;
      }
      let list = this.#awaiting.get(topic);
      if (!list) {
        list = [];
        this.#awaiting.set(topic, list);
      }
      const settle = () => {
        for (const k of entry.keys) this.#byDelivery.delete(k);
        const l = this.#awaiting.get(topic);
        const i = l ? l.indexOf(entry) : -1;
        if (l && i >= 0) {
          l.splice(i, 1);
          if (l.length === 0) this.#awaiting.delete(topic);
        }
        clearTimeout(timer);
      };
      const entry: AwaitingAck = {
        payload,
        keys: [],
        resolve: () => {
          settle();
          resolve();
        },
        fail: (err) => {
          settle();
          reject(err);
        },
      };
      const drop = (err: Error) => entry.fail(err);
      const timer = setTimeout(
        () => drop(new KapokError('KAPOK_EDGE_MQTT', `no PUBACK for ${topic} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      list.push(entry);
      this.#ours.add(payload);
      broker.publish(packet, (err) => {
        if (err) drop(err);
      });
    });
  }

  /** Hands an HTTP upgrade on the MQTT WebSocket path to the broker. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const broker = this.#broker;
    if (!broker) return void socket.destroy();
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      const stream = createWebSocketStream(ws);
      stream.on('error', () => stream.destroy());
      broker.handle(stream, req);
    });
  }

  /** Ends every session of a device at once (its device was revoked). */
  disconnectDevice(device: string): number {
    let n = 0;
    const clients =
      (this.#broker as unknown as { clients?: Record<string, Client> } | undefined)?.clients ?? {};
    for (const c of Object.values(clients)) {
      if (identities.get(c)?.device === device) {
        c.close();
        n++;
      }
    }
    return n;
  }

  /** Ends MQTT-over-WebSocket connections (before the HTTP drain, which cannot end upgraded sockets). */
  closeWebSockets(): void {
    for (const c of this.#wss.clients) c.terminate();
  }

  async stop(): Promise<void> {
    this.closeWebSockets();
    for (const list of [...this.#awaiting.values()])
      for (const a of [...list]) a.fail(new KapokError('KAPOK_EDGE_MQTT', 'edge MQTT broker stopped'));
    // Both at once: the TCP server's close waits for the connections the broker's close ends.
    await Promise.all([
      new Promise<void>((r) => (this.#tcp ? this.#tcp.close(() => r()) : r())),
      new Promise<void>((r) => (this.#broker ? this.#broker.close(() => r()) : r())),
    ]);
  }
}
