import type { IncomingMessage } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Aedes, type Client } from 'aedes';
import { createWebSocketStream, WebSocketServer } from 'ws';
import { KapokError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { MqttPeer } from '../../ports/mqtt.js';
import { topicMatches } from '../decode/topic.js';
import type { Ingest } from '../ingest.js';
import { type Acl, canPublish, canSubscribe, type Rights } from './acl.js';
import type { MqttAuthenticate, MqttIdentity } from './auth.js';
import { ConnectionLimits, type ConnectionLimitsOptions, LogLimiter } from './limits.js';
import { endSession, hookWrites, isV5, Reason, tooLargeFor } from './mqtt5.js';
import { SHARE_TOPIC, SharedSubscriptions } from './shared.js';
import type { Taps } from './taps.js';

/** What the broker counts (edge's metrics): refusals, ended sessions, refused connections. */
export type BrokerEvent =
  | 'publish_refused'
  | 'subscribe_refused'
  | 'session_expired'
  | 'session_revoked'
  | 'connection_refused_ip'
  | 'connection_refused_total';

export interface EmbeddedBrokerOptions {
  host: string;
  port: number;
  topics: readonly string[];
  ingest: Ingest;
  authenticate: MqttAuthenticate;
  /** The authorization model (edge.acl): rights per session, computed at CONNECT. */
  acl: Acl;
  logger: Logger;
  /** Filters tapped through the MQTT port: handed over in-process, never to the telemetry intake. */
  taps?: Taps;
  /** Socket limits (edge.mqtt.*); defaults in the config schema. */
  limits?: Partial<ConnectionLimitsOptions>;
  /** MQTT 5 limits (edge.mqtt.*); defaults in the config schema. */
  mqtt5?: Partial<Mqtt5Options>;
  onEvent?: (e: BrokerEvent) => void;
}

export interface Mqtt5Options {
  /** Largest packet accepted (advertised in the v5 CONNACK; larger ones end the connection). */
  maxPacketBytes: number;
  /** Topic aliases a v5 client may set (0: none). */
  topicAliasMaximum: number;
  /** Session Expiry Interval granted at most (s); a larger request is clamped and told in the CONNACK. */
  sessionExpiryMaxS: number;
  /** Sessions kept after their connection at most; over it a disconnecting one ends at once. */
  maxPendingSessions: number;
}

interface AwaitingAck {
  payload: Buffer;
  /** Deliveries (client id + packet id) of this publish awaiting a PUBACK. */
  keys: string[];
  /** Whose PUBACK counts (v2x: the vehicle's own session); others are ignored. */
  accept: ((peer: MqttPeer) => boolean) | undefined;
  resolve: () => void;
  fail: (err: Error) => void;
}

/** One authenticated connection: who it is, what it may do, and its expiry timer. */
interface Session {
  id: MqttIdentity;
  rights: Rights;
  peer: MqttPeer;
  checkedAt: number;
  timer: NodeJS.Timeout | undefined;
  /** Kapok is ending it (a v5 DISCONNECT is on its way): a second revocation notice does nothing. */
  ending: boolean;
}

const sessions = new WeakMap<Client, Session>();
/** A token identity is re-checked (device revoked by another process?) at most this often. */
const RECHECK_MS = 1000;
/** Where a refused PUBLISH goes instead (acknowledged, never delivered: no one may subscribe to $ topics but $SYS). */
const DROPPED = '$kapok/dropped';

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
  readonly #limits: ConnectionLimitsOptions;
  readonly #conns: ConnectionLimits;
  /** Refusal lines at info, at most 10 per 10 s (a misconfigured fleet would flood the log). */
  readonly #refusedLog: LogLimiter;
  /** Refused CONNECTs, limited apart: a flood of ACL refusals must not hide them (nor the reverse). */
  readonly #connectLog: LogLimiter;
  readonly #mqtt5: Mqtt5Options;
  #shared: SharedSubscriptions | undefined;
  /** What a CONNECT said (client id, protocol), for the refusal log line when Aedes refuses it. */
  readonly #connects = new WeakMap<Client, { clientId: string; protocol: number; cleanStart: boolean }>();
  port = 0;

  constructor(o: EmbeddedBrokerOptions) {
    if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535)
      throw new Error('EmbeddedBroker: options.port must be 0..65535');
    this.#o = o;
    this.#limits = {
      connectTimeoutMs: 10_000,
      idleTimeoutMs: 300_000,
      maxConnectionsPerIp: 100,
      maxConnections: 100_000,
      ...o.limits,
    };
    this.#conns = new ConnectionLimits(this.#limits);
    this.#mqtt5 = {
      maxPacketBytes: 16 * 1024 * 1024,
      topicAliasMaximum: 32,
      sessionExpiryMaxS: 86_400,
      maxPendingSessions: 10_000,
      ...o.mqtt5,
    };
    this.#refusedLog = new LogLimiter(10, 10_000, (n) =>
      o.logger.info({ suppressed: n }, 'mqtt refusals: further lines suppressed in the last 10 s'),
    );
    this.#connectLog = new LogLimiter(10, 10_000, (n) =>
      o.logger.info({ suppressed: n }, 'mqtt connection refusals: further lines suppressed in the last 10 s'),
    );
  }

  async start(): Promise<void> {
    const o = this.#o;
    const m5 = this.#mqtt5;
    const broker = await Aedes.createBroker({
      connectTimeout: this.#limits.connectTimeoutMs,
      maximumPacketSize: m5.maxPacketBytes,
      topicAliasMaximum: m5.topicAliasMaximum,
      sessionExpiryIntervalLimit: m5.sessionExpiryMaxS,
      pendingSessionsLimit: m5.maxPendingSessions,
      preConnect: (client, packet, done) => {
        this.#connects.set(client, {
          clientId: packet.clientId,
          protocol: packet.protocolVersion ?? 4,
          cleanStart: packet.clean !== false,
        });
        done(null, true);
      },
      authorizeForward: (client, packet0) => {
        const sess = sessions.get(client);
        // An expired token receives nothing more, even before its session is closed.
        if (sess?.id.expiresAt !== undefined && Date.now() >= sess.id.expiresAt) return null;
        let packet = packet0;
        // A shared-subscription delivery: the member sees the topic it was published on.
        const original = SharedSubscriptions.restore(packet.topic);
        if (original !== null) {
          packet = Object.assign(Object.create(Object.getPrototypeOf(packet)), packet);
          packet.topic = original;
        }
        // Never more than the MQTT 5 client's Maximum Packet Size: such a message is not sent to it.
        if (client.maximumPacketSize && tooLargeFor(client, packet)) return null;
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
              // v5: CONNACK 0x86 (Bad User Name or Password); 3.1.1: return code 4. Logged on connectionError.
              const err = new Error('bad username or password') as Error & { returnCode: number };
              err.returnCode = 4;
              return done(err, false);
            }
            this.#open(client, id);
            done(null, true);
          },
          (err) => done(err, false),
        );
      },
      authorizeSubscribe: (client, sub, done) => {
        const sess = sessions.get(client);
        // A `$share/g/f` subscription is checked as `f`: sharing never widens what a client may read.
        const share = this.#shared?.request(sub);
        const filter = share ? share.filter : sub.topic;
        const ok =
          sess !== undefined &&
          (share !== undefined || !sub.topic.startsWith(SHARE_TOPIC)) &&
          (!o.acl.enabled || canSubscribe(sess.rights, filter));
        if (ok) {
          if (share) this.#shared?.join(client, sub);
          return done(null, sub);
        }
        o.onEvent?.('subscribe_refused');
        this.#logRefusal(client.id, 'subscribe', share ? `$share/${share.group}/${filter}` : filter);
        done(null, null); // SUBACK failure: 0x80 (3.1.1), 0x87 Not authorized (5)
      },
      authorizePublish: (client, packet, done) => {
        if (!client) return done(null); // broker-internal publish ($SYS, wills)
        const topic = packet.topic;
        const sess = sessions.get(client);
        const id = sess?.id;
        // v5: why a publish ends the session (DISCONNECT with a reason; no PUBACK, so the client
        // resends it on its next connection, as a 3.1.1 client does after the close).
        const fail = (err: Error, reason: number, text: string) =>
          isV5(client) ? endSession(client, reason, text, () => done(err)) : done(err);
        if (id?.expiresAt !== undefined && Date.now() >= id.expiresAt)
          return fail(
            new KapokError(
              'KAPOK_EDGE_NOT_AUTHORIZED',
              `client ${client.id}: token expired; reconnect with a fresh token`,
            ),
            Reason.maximumConnectTime,
            'token expired',
          );
        if (sess && o.acl.enabled && !canPublish(sess.rights, topic)) {
          o.onEvent?.('publish_refused');
          this.#logRefusal(client.id, 'publish', topic);
          // v5: PUBACK 0x87 (Not authorized), the connection stays; never delivered nor stored.
          if (isV5(client)) return done(new Error('not authorized'));
          // 3.1.1, as Mosquitto does: acknowledged as usual (3.1.1 has no refusal to send), never
          // delivered nor stored nor retained, counted and logged.
          packet.topic = DROPPED;
          packet.retain = false;
          return done(null);
        }
        const tap = o.taps?.size ? o.taps.match(topic) : null;
        if (tap) {
          // Tapped (V2X): handed over synchronously with the publisher's identity, then relayed like
          // any message (subscribers with the right); never spooled as telemetry.
          try {
            const props = (packet as { properties?: { contentType?: string } }).properties;
            tap(topic, packet.payload as Buffer, sess?.peer, props?.contentType);
          } catch (err) {
            o.logger.warn({ topic, reason: (err as Error).message }, 'mqtt tap handler threw');
          }
          return done(null);
        }
        if (!o.topics.some((f) => topicMatches(f, topic))) return done(null); // not telemetry: plain relay
        // A device writes only its own points: a payload naming another device is dead-lettered.
        const owner = id?.subject.kind === 'device' ? id.subject.device : undefined;
        // Not spooled (disk full or failing): no PUBACK; v5 is told why (0x97 spool full, else 0x80).
        const stored = (err: Error | null | undefined) => {
          if (!err) return done(null);
          const full = (err as { code?: string }).code === 'KAPOK_EDGE_SPOOL_FULL';
          fail(
            err,
            full ? Reason.quotaExceeded : Reason.unspecified,
            full ? 'storage full' : 'storage error',
          );
        };
        const ingest = () => {
          const raw = packet.payload as Buffer;
          // Oversized payloads go straight to intake, which dead-letters them: no decryption work.
          if (!id?.open || raw.length > o.ingest.maxPayloadBytes)
            return o.ingest.submit(topic, raw, stored, owner);
          id.open(topic, raw).then(
            (plain) => o.ingest.submit(topic, plain, stored, owner),
            (err) => done(err),
          );
        };
        if (!id?.recheck || !sess) return ingest();
        const refuse = (why: string) =>
          fail(
            new KapokError(
              'KAPOK_EDGE_NOT_AUTHORIZED',
              `client ${client.id}: ${why}; reconnect with a fresh token`,
            ),
            Reason.notAuthorized,
            'not authorized',
          );
        if (Date.now() - sess.checkedAt < RECHECK_MS) return ingest();
        id.recheck().then(
          (ok) => {
            if (!ok) return refuse('token or device no longer valid');
            sess.checkedAt = Date.now();
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
      // A clean start discards the previous session: its shared-group memberships go with it.
      if (this.#connects.get(client)?.cleanStart) this.#shared?.ended(client.id);
      const parser = (client as unknown as { _parser?: NodeJS.EventEmitter })._parser;
      parser?.on('packet', (p: { cmd: string; messageId?: number }) => {
        if (p.cmd !== 'puback' || this.#byDelivery.size === 0) return;
        const key = `${client.id}\u0000${p.messageId}`;
        const entry = this.#byDelivery.get(key);
        if (!entry) return;
        this.#byDelivery.delete(key);
        // Only the PUBACK of the session the publisher names counts (v2x: the vehicle's own).
        const peer = sessions.get(client)?.peer;
        if (entry.accept && !(peer && entry.accept(peer))) return;
        entry.resolve();
      });
    });
    broker.on('clientDisconnect', (client) => {
      clearTimeout(sessions.get(client)?.timer);
      this.#shared?.disconnected(client);
    });
    broker.on('sessionExpired', (client) => this.#shared?.ended(client.id));
    // The code says why Kapok closed a connection (KAPOK_EDGE_NOT_AUTHORIZED, a spool error ...).
    // A refused CONNECT (bad credentials, unsupported protocol, bad client id) is logged at info.
    const onError = (client: Client, err: Error) => {
      const e = err as { code?: unknown; errorCode?: number; reasonCode?: number };
      if (!client.connected && (e.errorCode !== undefined || e.reasonCode !== undefined))
        return this.#logConnectRefused(client, err.message, e.reasonCode ?? e.errorCode);
      o.logger.debug(
        // `reason`, not `msg`: pino writes its own msg after the object's, and JSON readers keep the last.
        { client: client.id, code: e.code, reason: err.message },
        'mqtt client error',
      );
    };
    broker.on('clientError', onError);
    broker.on('connectionError', onError);
    this.#broker = broker;
    this.#shared = new SharedSubscriptions(broker);
    // noDelay: without it Nagle's algorithm holds small packets (a strategy, a PUBACK) up to 40 ms.
    const tcp = createServer({ noDelay: true }, (socket) => {
      if (this.#admit(socket)) this.#handle(socket);
    });
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
    // After listening, an accept error (EMFILE under a connection flood) must not be unhandled: it
    // would end the process. The server keeps listening; /readyz shows whether it still is.
    tcp.on('error', (err) => o.logger.warn({ err }, 'edge mqtt listener error'));
    const addr = tcp.address();
    this.port = typeof addr === 'object' && addr ? addr.port : o.port;
    o.logger.info({ host: o.host, port: this.port }, 'edge mqtt broker listening');
  }

  /**
   * Publishes from Kapok itself. QoS 1 resolves on the first subscriber PUBACK for this topic and
   * payload (Aedes' `ack` event), or rejects after timeoutMs (nobody subscribed, or nobody acked).
   */
  publish(
    topic: string,
    payload: Buffer,
    qos: 0 | 1,
    timeoutMs: number,
    accept?: (peer: MqttPeer) => boolean,
  ): Promise<void> {
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
        accept,
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
    if (!this.#admit(req.socket)) return void socket.destroy();
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      const stream = createWebSocketStream(ws);
      stream.on('error', () => stream.destroy());
      this.#handle(stream, req);
    });
  }

  /** Ends every session of a device at once (its device was revoked, here or by another process). */
  disconnectDevice(device: string): number {
    let n = 0;
    const clients =
      (this.#broker as unknown as { clients?: Record<string, Client> } | undefined)?.clients ?? {};
    for (const c of Object.values(clients)) {
      const sess = sessions.get(c);
      const subj = sess?.id.subject;
      if (sess && !sess.ending && subj?.kind === 'device' && subj.device === device) {
        sess.ending = true;
        this.#o.onEvent?.('session_revoked');
        endSession(c, Reason.notAuthorized, 'device revoked');
        n++;
      }
    }
    return n;
  }

  /** Open connections now (TCP and WebSocket). */
  get connections(): number {
    return this.#conns.open;
  }

  /** Records an authenticated session: its rights (computed once here) and its expiry timer. */
  #open(client: Client, id: MqttIdentity): void {
    const subj = id.subject;
    const sess: Session = {
      id,
      rights: this.#o.acl.rightsOf(subj),
      peer: {
        clientId: client.id,
        device: subj.kind === 'device' ? subj.device : null,
        vehicle: subj.kind === 'device' ? subj.vehicle : null,
        user: subj.kind === 'user' ? subj.user : null,
      },
      checkedAt: Date.now(),
      timer: undefined,
      ending: false,
    };
    if (id.expiresAt !== undefined) {
      // The session ends when its token does (v5: DISCONNECT 0xA0 Maximum connect time; 3.1.1: close).
      sess.timer = setTimeout(
        () => {
          if (sessions.get(client) !== sess || sess.ending) return;
          sess.ending = true;
          this.#o.onEvent?.('session_expired');
          this.#o.logger.info({ client: client.id }, 'mqtt session ended: its token expired');
          endSession(client, Reason.maximumConnectTime, 'token expired');
        },
        Math.max(0, id.expiresAt - Date.now()),
      );
      sess.timer.unref();
    }
    sessions.set(client, sess);
  }

  /** Per-IP and total caps and the idle timeout for a new socket; false: refused (destroyed). */
  #admit(socket: Socket): boolean {
    const why = this.#conns.admit(socket);
    if (why === null) return true;
    this.#o.onEvent?.(why === 'ip' ? 'connection_refused_ip' : 'connection_refused_total');
    this.#refusedLog.log(() =>
      this.#o.logger.info(
        {
          ip: socket.remoteAddress,
          limit: why === 'ip' ? 'edge.mqtt.maxConnectionsPerIp' : 'edge.mqtt.maxConnections',
        },
        'mqtt connection refused: over the limit',
      ),
    );
    socket.destroy();
    return false;
  }

  /** Hands an admitted connection to Aedes, with the MQTT 5 shared-subscription rewrite before it. */
  #handle(stream: Duplex, req?: IncomingMessage): void {
    const broker = this.#broker as Aedes;
    hookWrites(stream);
    const client = broker.handle(stream as Socket, req);
    this.#shared?.attach(client);
  }

  #logConnectRefused(client: Client, reason: string, code: number | undefined): void {
    const c = this.#connects.get(client);
    this.#connectLog.log(() =>
      this.#o.logger.info(
        {
          client: (c?.clientId || client.id || '').slice(0, 128),
          protocol: c
            ? c.protocol === 5
              ? 'mqtt5'
              : c.protocol === 4
                ? 'mqtt3.1.1'
                : `v${c.protocol}`
            : null,
          reason,
          code,
        },
        'mqtt connection refused',
      ),
    );
  }

  #logRefusal(client: string, action: 'publish' | 'subscribe', topic: string): void {
    this.#refusedLog.log(() =>
      this.#o.logger.info(
        { client, action, topic: topic.length > 200 ? `${topic.slice(0, 200)}…` : topic },
        `mqtt ${action} refused: not authorized (edge.acl)`,
      ),
    );
  }

  /** Ends MQTT-over-WebSocket connections (before the HTTP drain, which cannot end upgraded sockets). */
  /** Whether the MQTT TCP listener is open (false before start, after stop, or if it closed). */
  get listening(): boolean {
    return this.#tcp?.listening === true;
  }

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
