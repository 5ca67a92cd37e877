/**
 * The event bus port: fleet-wide notices that something changed (a key revoked, a device revoked, a
 * zone edited), so every instance acts at once instead of polling the Store. Adapters:
 * `adapters/memory` (one process, the default) and `adapters/nats` (JetStream, with a Store outbox).
 *
 * Contract every adapter keeps (checked by test/ports/events.conformance.ts):
 * - Types are a closed set (EVENT_TYPES); `publish` refuses another with KAPOK_EVENTS_UNKNOWN_TYPE,
 *   data that is not a JSON object with KAPOK_EVENTS_INVALID, and an envelope larger than
 *   maxPayloadBytes with KAPOK_EVENTS_TOO_LARGE, before anything is stored or sent.
 * - `publish` resolves once the event is durable: memory at once (the process is the fleet); NATS
 *   once the event is in the local outbox (a Store table), which a relay drains to JetStream in order.
 * - Delivery is at least once, to every subscribed instance, the publishing one included: handlers
 *   must be idempotent (revoking twice, reloading twice is harmless). A handler may be async; the
 *   event is acknowledged after every handler of it resolved. A handler that throws is counted and
 *   logged, never thrown into the publisher; NATS redelivers the event (the memory bus does not).
 * - After `close()` publish and subscribe fail with KAPOK_EVENTS_CLOSED; close is idempotent.
 */
import { KapokError } from '../core/errors.js';

/** Every event type, `<family>.<subject>.<verb>`; the family is the JetStream stream (KAPOK_GATEWAY...). */
export const EVENT_TYPES = [
  'gateway.key.revoked',
  'gm.device.revoked',
  'gm.token_key.rotated',
  'inference.model.changed',
  'control.config.applied',
  'v2x.zone.changed',
  'jobs.job.submitted',
  'jobs.job.cancelled',
  'jobs.job.finished',
  'jobs.task.failed',
  'saga.dlq.added',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** The families (first segment of a type), one stream each on NATS. */
export const EVENT_FAMILIES = [...new Set(EVENT_TYPES.map((t) => t.split('.')[0] as string))];

export const DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024;

export interface EventEnvelope<D = Record<string, unknown>> {
  /** Unique per event (a UUID); NATS also deduplicates on it (Nats-Msg-Id). */
  id: string;
  type: EventType;
  /** When it was published, ms since the epoch (the publisher's clock). */
  at: number;
  /** The publishing instance (events.instanceId). */
  origin: string;
  data: D;
}

export type EventHandler = (event: EventEnvelope) => void | Promise<void>;

export interface EventBusStatus {
  /** True when events flow now: memory always; NATS while connected with its streams in place. */
  connected: boolean;
  /** Events stored but not yet acknowledged by the backend (the NATS outbox); 0 on memory. */
  pending: number;
  /** Events handed to handlers that all resolved, since start (what tests and metrics wait on). */
  handled: number;
  /** Handler calls that threw or rejected. */
  handlerErrors: number;
  /** Received messages that were not events (bad JSON, unknown type, too large), dead-lettered. */
  deadLettered: number;
  /** Short secret-free words for /readyz (last error). */
  detail?: string;
}

/** What an adapter reports outside the return values: handler failures, connection trouble. */
export interface EventBusHooks {
  onHandlerError?: (err: unknown, event: EventEnvelope) => void;
  /** Connection errors, dead letters, relay failures: logged by the wiring point. */
  onWarning?: (msg: string, fields?: Record<string, unknown>) => void;
}

export interface EventBus {
  readonly kind: 'memory' | 'nats';
  /** This instance's id (the origin of what it publishes). */
  readonly instanceId: string;
  publish(type: EventType, data: Record<string, unknown>): Promise<EventEnvelope>;
  /** Calls handler for each event of these types; returns the unsubscribe function. */
  subscribe(types: readonly EventType[], handler: EventHandler): () => void;
  status(): EventBusStatus;
  /** Stops delivering and releases the backend (NATS: waits briefly for the outbox to drain). */
  close(): Promise<void>;
}

export function isEventType(t: unknown): t is EventType {
  return typeof t === 'string' && (EVENT_TYPES as readonly string[]).includes(t);
}

/** The family (stream) of a type: `gateway` for gateway.key.revoked. */
export function familyOf(type: EventType): string {
  return type.split('.')[0] as string;
}

/** Checks a publish call and builds its envelope and wire form; throws the catalogue errors above. */
export function makeEnvelope(
  type: unknown,
  data: unknown,
  origin: string,
  maxPayloadBytes: number,
  id: string,
): { envelope: EventEnvelope; json: string } {
  if (!isEventType(type)) {
    throw new KapokError(
      'KAPOK_EVENTS_UNKNOWN_TYPE',
      `event type ${JSON.stringify(String(type).slice(0, 64))} is not one of ${EVENT_TYPES.join(', ')}`,
    );
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new KapokError('KAPOK_EVENTS_INVALID', `event ${type}: data must be a JSON object`);
  }
  const envelope: EventEnvelope = { id, type, at: Date.now(), origin, data: data as Record<string, unknown> };
  let json: string;
  try {
    json = JSON.stringify(envelope);
  } catch (err) {
    throw new KapokError('KAPOK_EVENTS_INVALID', `event ${type}: data cannot be serialized as JSON`, {
      cause: err,
    });
  }
  const size = Buffer.byteLength(json);
  if (size > maxPayloadBytes) {
    throw new KapokError(
      'KAPOK_EVENTS_TOO_LARGE',
      `event ${type} is ${size} bytes, over events.maxPayloadBytes (${maxPayloadBytes}): send an id and let consumers read the rest from the Store`,
    );
  }
  return { envelope, json };
}

/**
 * Parses a received event; null when it is not one (bad JSON, wrong shape, unknown type, too large):
 * such messages are dead-lettered by the NATS adapter, never handed to handlers.
 */
export function parseEnvelope(
  raw: Uint8Array | string,
  maxPayloadBytes: number,
): { event: EventEnvelope } | { reason: string } {
  const size = typeof raw === 'string' ? Buffer.byteLength(raw) : raw.byteLength;
  if (size > maxPayloadBytes) return { reason: 'too_large' };
  let v: Partial<EventEnvelope> | null;
  try {
    v = JSON.parse(typeof raw === 'string' ? raw : Buffer.from(raw).toString('utf8'));
  } catch {
    return { reason: 'not_json' };
  }
  if (
    typeof v !== 'object' ||
    v === null ||
    typeof v.id !== 'string' ||
    typeof v.at !== 'number' ||
    typeof v.origin !== 'string' ||
    typeof v.data !== 'object' ||
    v.data === null
  ) {
    return { reason: 'bad_shape' };
  }
  if (!isEventType(v.type)) return { reason: 'unknown_type' };
  return { event: v as EventEnvelope };
}

export function checkSubscribe(types: unknown, handler: unknown): asserts types is readonly EventType[] {
  if (!Array.isArray(types) || types.length === 0 || !types.every(isEventType)) {
    throw new KapokError(
      'KAPOK_EVENTS_UNKNOWN_TYPE',
      `subscribe takes a non-empty list of event types from: ${EVENT_TYPES.join(', ')}`,
    );
  }
  if (typeof handler !== 'function') {
    throw new KapokError('KAPOK_EVENTS_INVALID', 'subscribe takes a handler function');
  }
}

export function closedError(kind: string): KapokError {
  return new KapokError('KAPOK_EVENTS_CLOSED', `the ${kind} event bus was used after close()`);
}

/**
 * The subscribers of one bus, shared by every adapter: registration by type, and delivery of one
 * event to each handler on its own copy (one handler cannot change another's event), counting
 * failures and telling `onHandlerError` without ever throwing. Adapters decide what a failure means
 * (memory: counted; NATS: redelivered, then dead-lettered).
 */
export class EventHandlers {
  readonly #byType = new Map<EventType, Set<EventHandler>>();
  /** Deliveries every handler took without throwing, and handler calls that threw. */
  handled = 0;
  errors = 0;

  constructor(private readonly onHandlerError?: EventBusHooks['onHandlerError']) {}

  /** Registers after checking the arguments; returns the unsubscribe function. */
  add(types: unknown, handler: unknown): () => void {
    checkSubscribe(types, handler);
    const h = handler as EventHandler;
    for (const t of types) {
      const set = this.#byType.get(t) ?? new Set<EventHandler>();
      this.#byType.set(t, set);
      set.add(h);
    }
    return () => {
      for (const t of types) this.#byType.get(t)?.delete(h);
    };
  }

  /** The types anyone has subscribed to. */
  types(): IterableIterator<EventType> {
    return this.#byType.keys();
  }

  /** Runs every handler of the event's type; true when none threw (or there were none). */
  async deliver(event: EventEnvelope): Promise<boolean> {
    const handlers = [...(this.#byType.get(event.type) ?? [])];
    if (handlers.length === 0) return true;
    let ok = true;
    await Promise.all(
      handlers.map(async (h) => {
        const copy = structuredClone(event);
        try {
          await h(copy);
        } catch (err) {
          ok = false;
          this.errors++;
          try {
            this.onHandlerError?.(err, copy);
          } catch {
            // A throwing hook must not become an unhandled rejection or stop a consumer.
          }
        }
      }),
    );
    if (ok) this.handled++;
    return ok;
  }

  clear(): void {
    this.#byType.clear();
  }
}
