/**
 * The event bus on NATS JetStream. One stream per family (`<PREFIX>_GATEWAY`, `<PREFIX>_GM`, ...,
 * subjects `<prefix>.<family>.>`) plus `<PREFIX>_DEAD` (`<prefix>.dead`), created or updated when
 * the connection comes up. Each instance has one durable pull consumer per family it subscribes to,
 * named after its instance id, so a restarted instance resumes where it stopped; explicit ack after
 * every handler of an event resolved, a nak (redelivery after a pause) when one failed, and a dead
 * letter once maxDeliver is reached. Messages that are not events (bad JSON, unknown type, too large,
 * a subject that does not match the type) are dead-lettered and acked at once: they never reach a
 * handler nor stop the consumer.
 *
 * publish writes the event to the Store outbox (outbox.ts) and resolves; a relay sends the outbox in
 * order with the event id as Nats-Msg-Id (JetStream drops a resend within the duplicate window) and
 * deletes a row only once JetStream acknowledged it. NATS down at start: the bus is created anyway,
 * reports not connected, and keeps trying; nothing published meanwhile is lost.
 */

import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AckPolicy,
  type ConsumerMessages,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { KapokError, messageOf } from '../../core/errors.js';
import {
  closedError,
  DEFAULT_MAX_PAYLOAD_BYTES,
  EVENT_FAMILIES,
  type EventBus,
  type EventBusHooks,
  type EventBusStatus,
  type EventEnvelope,
  type EventHandler,
  EventHandlers,
  type EventType,
  familyOf,
  makeEnvelope,
  parseEnvelope,
} from '../../ports/events.js';
import type { Store } from '../../ports/store.js';
import { Outbox } from './outbox.js';

export interface NatsEventBusOptions extends EventBusHooks {
  /** nats://[user:pass@]host:port, several comma-separated for a cluster. */
  url: string;
  /** Holds the outbox (migrated by the caller with EVENTS_MIGRATIONS). */
  store: Store;
  /** Stable across restarts of this instance: the durable consumers' name and the outbox origin. */
  instanceId: string;
  maxPayloadBytes?: number;
  /** First segment of every subject; streams are named after it in upper case. Default 'kapok'. */
  subjectPrefix?: string;
  /** Events held in the outbox at most; beyond that publish fails with KAPOK_EVENTS_OUTBOX_FULL. */
  outboxMax?: number;
  /** Deliveries of one event before it is dead-lettered. Default 5. */
  maxDeliver?: number;
  /** How long JetStream waits for an ack before redelivering. Default 30000. */
  ackWaitMs?: number;
  /** Events kept in a stream this long. Default 86400 (a day). */
  maxAgeSeconds?: number;
  /** A consumer whose instance is gone this long is removed by the server. Default 7 days. */
  consumerInactiveSeconds?: number;
  /** On close, wait at most this long for the outbox to drain. Default 2000. */
  closeWaitMs?: number;
  /**
   * false: publish only, no consumers (the CLI). Default true: a durable consumer per family is
   * created at start, consumed once something subscribes to the family (its backlog is kept until).
   */
  consume?: boolean;
}

const NANOS = 1_000_000;
const RETRY_MS = 500;

export function streamName(prefix: string, family: string): string {
  return `${prefix}_${family}`.toUpperCase().replace(/[^A-Z0-9_-]/g, '_');
}

/** A consumer name may not hold . * > / \ or spaces. */
export function consumerName(instanceId: string): string {
  return instanceId.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 200);
}

export async function createNatsEventBus(
  options: NatsEventBusOptions,
): Promise<EventBus & NatsEventBusExtras> {
  const o = {
    maxPayloadBytes: DEFAULT_MAX_PAYLOAD_BYTES,
    subjectPrefix: 'kapok',
    outboxMax: 10_000,
    maxDeliver: 5,
    ackWaitMs: 30_000,
    maxAgeSeconds: 86_400,
    consumerInactiveSeconds: 7 * 86_400,
    closeWaitMs: 2000,
    consume: true,
    ...options,
  };
  const bad = (key: string, want: string) => {
    throw new KapokError('KAPOK_CONFIG_INVALID', `NATS event bus: ${key} must be ${want}`);
  };
  if (typeof o.url !== 'string' || !o.url) bad('url', 'a nats:// URL');
  if (!/^[a-z0-9_-]{1,32}$/i.test(o.subjectPrefix)) bad('subjectPrefix', 'letters, digits, _ or - (1-32)');
  if (typeof o.instanceId !== 'string' || !consumerName(o.instanceId)) bad('instanceId', 'a non-empty id');
  if (!Number.isSafeInteger(o.maxDeliver) || o.maxDeliver < 1) bad('maxDeliver', 'an integer >= 1');
  if (!Number.isSafeInteger(o.outboxMax) || o.outboxMax < 1) bad('outboxMax', 'an integer >= 1');
  const bus = new NatsEventBus(o);
  bus.start();
  return bus;
}

/** What the NATS bus offers beyond the port, for tests and the benchmark. */
export interface NatsEventBusExtras {
  /** The stream names this bus uses (tests delete them after a run). */
  readonly streams: readonly string[];
  /** Resolves once connected with streams in place (or rejects after timeoutMs). */
  ready(timeoutMs?: number): Promise<void>;
}

type Options = Required<Omit<NatsEventBusOptions, keyof EventBusHooks>> & EventBusHooks;

class NatsEventBus implements EventBus, NatsEventBusExtras {
  readonly kind = 'nats' as const;
  readonly instanceId: string;
  readonly streams: readonly string[];
  readonly #o: Options;
  readonly #outbox: Outbox;
  readonly #handlers: EventHandlers;
  /** Families with a consume loop running (or starting). */
  readonly #consuming = new Map<string, ConsumerMessages | null>();
  #nc: NatsConnection | null = null;
  #js: JetStreamClient | null = null;
  #jsm: JetStreamManager | null = null;
  #up = false;
  #streamsReady = false;
  #closed = false;
  #lastError = '';
  #pending = 0;
  #deadLettered = 0;
  #wake: (() => void) | null = null;
  #readyWaiters: Array<() => void> = [];
  #relayDone: Promise<void> = Promise.resolve();

  constructor(o: Options) {
    this.#o = o;
    this.instanceId = o.instanceId;
    this.#outbox = new Outbox(o.store, o.instanceId, o.outboxMax);
    this.#handlers = new EventHandlers(o.onHandlerError);
    this.streams = [...EVENT_FAMILIES, 'dead'].map((f) => streamName(o.subjectPrefix, f));
  }

  start(): void {
    void this.#connectLoop();
    this.#relayDone = this.#relayLoop();
  }

  async publish(type: EventType, data: Record<string, unknown>): Promise<EventEnvelope> {
    if (this.#closed) throw closedError(this.kind);
    const { envelope, json } = makeEnvelope(
      type,
      data,
      this.instanceId,
      this.#o.maxPayloadBytes,
      randomUUID(),
    );
    await this.#outbox.add(envelope.id, this.#subject(envelope.type), json);
    this.#pending++;
    this.#wake?.();
    return envelope;
  }

  subscribe(types: readonly EventType[], handler: EventHandler): () => void {
    if (this.#closed) throw closedError(this.kind);
    const off = this.#handlers.add(types, handler);
    for (const t of types) {
      const family = familyOf(t);
      if (!this.#o.consume) continue;
      if (!this.#consuming.has(family) && this.#streamsReady) void this.#consume(family);
    }
    return off;
  }

  status(): EventBusStatus {
    const connected = this.#up && this.#streamsReady && !this.#closed;
    return {
      connected,
      pending: this.#pending,
      handled: this.#handlers.handled,
      handlerErrors: this.#handlers.errors,
      deadLettered: this.#deadLettered,
      ...(connected || !this.#lastError ? {} : { detail: this.#lastError }),
    };
  }

  ready(timeoutMs = 10_000): Promise<void> {
    if (this.status().connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`NATS event bus not ready within ${timeoutMs} ms: ${this.#lastError}`)),
        timeoutMs,
      );
      this.#readyWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    // Give the relay a moment to send what publish already promised; what is left stays in the
    // outbox for the next start (or for `kapok up` sharing this instance id).
    const until = Date.now() + this.#o.closeWaitMs;
    while (this.#pending > 0 && Date.now() < until) await sleep(20);
    this.#closed = true;
    this.#wake?.();
    for (const m of this.#consuming.values()) m?.stop();
    this.#consuming.clear();
    await this.#relayDone;
    const nc = this.#nc;
    this.#nc = null;
    if (nc) await nc.close().catch(() => undefined);
    this.#handlers.clear();
  }

  #subject(type: EventType): string {
    return `${this.#o.subjectPrefix}.${type}`;
  }

  #warn(msg: string, fields?: Record<string, unknown>): void {
    try {
      this.#o.onWarning?.(msg, fields);
    } catch {
      // A throwing hook must not stop the bus.
    }
  }

  /** Connects (retrying until close), then sets the streams up; the client reconnects by itself after. */
  async #connectLoop(): Promise<void> {
    let logged = false;
    while (!this.#closed) {
      try {
        const nc = await connect({
          servers: this.#o.url.split(','),
          name: `kapok-${this.instanceId}`,
          maxReconnectAttempts: -1,
          reconnectTimeWait: RETRY_MS,
          timeout: 2000,
          pingInterval: 5000,
          maxPingOut: 2,
        });
        if (this.#closed) {
          await nc.close();
          return;
        }
        this.#nc = nc;
        this.#js = jetstream(nc);
        this.#jsm = await jetstreamManager(nc);
        this.#up = true;
        void this.#watch(nc);
        await this.#setupStreams();
        return;
      } catch (err) {
        this.#lastError = `cannot reach NATS: ${messageOf(err)}`;
        if (!logged)
          this.#warn('events: NATS not reachable; retrying (events are kept in the outbox)', {
            err: messageOf(err),
          });
        logged = true;
        const nc = this.#nc;
        this.#nc = null;
        this.#up = false;
        await nc?.close().catch(() => undefined);
        await sleep(RETRY_MS);
      }
    }
  }

  async #watch(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') {
        this.#up = false;
        this.#lastError = 'disconnected from NATS; reconnecting';
        this.#warn('events: disconnected from NATS; reconnecting');
      } else if (s.type === 'reconnect') {
        this.#up = true;
        this.#warn('events: reconnected to NATS');
        this.#wake?.();
        this.#notifyReady();
      }
    }
  }

  async #setupStreams(): Promise<void> {
    const jsm = this.#jsm as JetStreamManager;
    const p = this.#o.subjectPrefix;
    const families = [...EVENT_FAMILIES.map((f) => [f, `${p}.${f}.>`]), ['dead', `${p}.dead`]] as const;
    for (const [family, subject] of families) {
      const name = streamName(p, family);
      const cfg = {
        subjects: [subject],
        max_age: this.#o.maxAgeSeconds * 1000 * NANOS,
        duplicate_window: 120 * 1000 * NANOS,
      };
      try {
        await jsm.streams.info(name);
        await jsm.streams.update(name, cfg);
      } catch (err) {
        if (!/not found/i.test(messageOf(err))) throw err;
        await jsm.streams.add({ name, ...cfg });
      }
    }
    // Consumers before anything is relayed: a new consumer starts with what is published after it.
    if (this.#o.consume) for (const family of EVENT_FAMILIES) await this.#ensureConsumer(family);
    this.#streamsReady = true;
    this.#lastError = '';
    for (const t of this.#handlers.types()) {
      const family = familyOf(t);
      if (this.#o.consume && !this.#consuming.has(family)) void this.#consume(family);
    }
    this.#wake?.();
    this.#notifyReady();
  }

  #notifyReady(): void {
    if (!this.status().connected) return;
    for (const w of this.#readyWaiters.splice(0)) w();
  }

  /** Creates this instance's durable consumer of a family, or updates the limits of the one it has. */
  async #ensureConsumer(family: string): Promise<void> {
    const jsm = this.#jsm as JetStreamManager;
    const stream = streamName(this.#o.subjectPrefix, family);
    const name = consumerName(this.instanceId);
    const cfg = {
      ack_wait: this.#o.ackWaitMs * NANOS,
      max_deliver: this.#o.maxDeliver + 1, // our own dead letter comes first, at maxDeliver
      inactive_threshold: this.#o.consumerInactiveSeconds * 1000 * NANOS,
    };
    try {
      await jsm.consumers.info(stream, name);
      await jsm.consumers.update(stream, name, cfg);
    } catch (err) {
      if (!/not found/i.test(messageOf(err))) throw err;
      // A new instance starts with what is published from now on; a known one resumes.
      await jsm.consumers.add(stream, {
        ...cfg,
        durable_name: name,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.New,
      });
    }
  }

  /** One family's durable consumer, consumed until close; handled in order, one event at a time. */
  async #consume(family: string): Promise<void> {
    this.#consuming.set(family, null);
    const stream = streamName(this.#o.subjectPrefix, family);
    const name = consumerName(this.instanceId);
    while (!this.#closed) {
      try {
        const consumer = await (this.#js as JetStreamClient).consumers.get(stream, name);
        const messages = await consumer.consume({ max_messages: 64 });
        if (this.#closed) {
          messages.stop();
          return;
        }
        this.#consuming.set(family, messages);
        for await (const m of messages) await this.#handle(m);
        if (this.#closed) return;
      } catch (err) {
        if (this.#closed) return;
        this.#warn('events: consumer failed; restarting', { stream, err: messageOf(err) });
        await sleep(RETRY_MS);
        // The server may have removed it (consumerInactiveSeconds, an operator): make it again.
        await this.#ensureConsumer(family).catch(() => undefined);
      }
    }
  }

  async #handle(m: JsMsg): Promise<void> {
    const parsed = parseEnvelope(m.data, this.#o.maxPayloadBytes);
    if ('reason' in parsed) return this.#deadLetter(m, parsed.reason);
    const event = parsed.event;
    if (m.subject !== this.#subject(event.type)) return this.#deadLetter(m, 'subject_mismatch');
    if (await this.#handlers.deliver(event)) {
      m.ack();
    } else if (m.info.deliveryCount >= this.#o.maxDeliver) {
      await this.#deadLetter(m, 'handler_failed');
    } else {
      m.nak(Math.min(1000 * m.info.deliveryCount, this.#o.ackWaitMs));
    }
  }

  /** Keeps the message for an operator under <prefix>.dead, counts it and acks it. */
  async #deadLetter(m: JsMsg, reason: string): Promise<void> {
    this.#deadLettered++;
    this.#warn('events: message dead-lettered', { reason, subject: m.subject, seq: m.seq });
    const body = JSON.stringify({
      reason,
      subject: m.subject,
      stream: m.info.stream,
      seq: m.seq,
      at: Date.now(),
      consumer: consumerName(this.instanceId),
      data: Buffer.from(m.data).toString('base64'),
    });
    try {
      await (this.#js as JetStreamClient).publish(`${this.#o.subjectPrefix}.dead`, body);
    } catch (err) {
      this.#warn('events: dead letter could not be stored', { err: messageOf(err) });
    }
    m.ack();
  }

  /** Sends the outbox in order; a row goes only when JetStream acknowledged it. */
  async #relayLoop(): Promise<void> {
    try {
      this.#pending = await this.#outbox.count();
    } catch (err) {
      this.#warn('events: outbox unreadable', { err: messageOf(err) });
    }
    while (!this.#closed) {
      if (this.#up && this.#streamsReady) {
        try {
          const rows = await this.#outbox.next(100);
          for (const r of rows) {
            if (this.#closed) break;
            await (this.#js as JetStreamClient).publish(r.subject, r.body, { msgID: r.id, timeout: 2000 });
            await this.#outbox.remove(r.seq);
            this.#pending = Math.max(0, this.#pending - 1);
          }
          if (rows.length === 100) continue;
          this.#pending = await this.#outbox.count();
        } catch (err) {
          this.#lastError = `outbox relay: ${messageOf(err)}`;
          this.#warn('events: outbox relay failed; retrying', { err: messageOf(err) });
          await sleep(RETRY_MS);
          continue;
        }
      }
      if (this.#pending > 0 && this.#up && this.#streamsReady) continue;
      await new Promise<void>((r) => {
        const timer = setTimeout(r, 1000);
        this.#wake = () => {
          clearTimeout(timer);
          this.#wake = null;
          r();
        };
      });
    }
  }
}
