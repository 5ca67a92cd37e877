/**
 * The in-process event bus (the default): a real bus for one process, not a mock. publish stores
 * nothing (the process is the whole fleet) and delivers asynchronously, after publish resolved, to
 * every handler of the type; a handler that throws is counted and reported, never thrown into the
 * publisher, and not retried (there is no other copy to redeliver from).
 */
import { randomUUID } from 'node:crypto';
import { KapokError } from '../../core/errors.js';
import {
  checkSubscribe,
  closedError,
  DEFAULT_MAX_PAYLOAD_BYTES,
  type EventBus,
  type EventBusHooks,
  type EventBusStatus,
  type EventEnvelope,
  type EventHandler,
  type EventType,
  makeEnvelope,
} from '../../ports/events.js';

export interface MemoryEventBusOptions extends EventBusHooks {
  instanceId?: string;
  maxPayloadBytes?: number;
}

export async function createMemoryEventBus(options: MemoryEventBusOptions = {}): Promise<EventBus> {
  const max = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
  if (!Number.isSafeInteger(max) || max < 256) {
    throw new KapokError(
      'KAPOK_CONFIG_INVALID',
      `memory event bus: maxPayloadBytes must be >= 256 (got ${max})`,
    );
  }
  return new MemoryEventBus(options.instanceId ?? 'memory', max, options);
}

class MemoryEventBus implements EventBus {
  readonly kind = 'memory' as const;
  readonly #handlers = new Map<EventType, Set<EventHandler>>();
  readonly #inFlight = new Set<Promise<void>>();
  #handled = 0;
  #handlerErrors = 0;
  #closed = false;

  constructor(
    readonly instanceId: string,
    private readonly maxPayloadBytes: number,
    private readonly hooks: EventBusHooks,
  ) {}

  async publish(type: EventType, data: Record<string, unknown>): Promise<EventEnvelope> {
    if (this.#closed) throw closedError(this.kind);
    const { envelope, json } = makeEnvelope(type, data, this.instanceId, this.maxPayloadBytes, randomUUID());
    // Each handler gets its own copy, as it would from the wire: one cannot change another's event.
    const run = new Promise<void>((r) => setImmediate(r)).then(() => this.#deliver(json, envelope.type));
    this.#inFlight.add(run);
    void run.finally(() => this.#inFlight.delete(run));
    return envelope;
  }

  subscribe(types: readonly EventType[], handler: EventHandler): () => void {
    if (this.#closed) throw closedError(this.kind);
    checkSubscribe(types, handler);
    for (const t of types) {
      const set = this.#handlers.get(t) ?? new Set<EventHandler>();
      this.#handlers.set(t, set);
      set.add(handler);
    }
    return () => {
      for (const t of types) this.#handlers.get(t)?.delete(handler);
    };
  }

  status(): EventBusStatus {
    return {
      connected: !this.#closed,
      pending: this.#inFlight.size,
      handled: this.#handled,
      handlerErrors: this.#handlerErrors,
      deadLettered: 0,
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Let events already published reach their handlers: publish promised them.
    await Promise.allSettled([...this.#inFlight]);
    this.#handlers.clear();
  }

  async #deliver(json: string, type: EventType): Promise<void> {
    const handlers = [...(this.#handlers.get(type) ?? [])];
    if (handlers.length === 0) return;
    let ok = true;
    await Promise.all(
      handlers.map(async (h) => {
        const event = JSON.parse(json) as EventEnvelope;
        try {
          await h(event);
        } catch (err) {
          ok = false;
          this.#handlerErrors++;
          try {
            this.hooks.onHandlerError?.(err, event);
          } catch {
            // A throwing hook must not turn into an unhandled rejection.
          }
        }
      }),
    );
    if (ok) this.#handled++;
  }
}
