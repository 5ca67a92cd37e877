/**
 * The in-process event bus (the default): a real bus for one process, not a mock. publish stores
 * nothing (the process is the whole fleet) and delivers asynchronously, after publish resolved, to
 * every handler of the type; a handler that throws is counted and reported, never thrown into the
 * publisher, and not retried (there is no other copy to redeliver from).
 */
import { randomUUID } from 'node:crypto';
import { KapokError } from '../../core/errors.js';
import {
  closedError,
  DEFAULT_MAX_PAYLOAD_BYTES,
  type EventBus,
  type EventBusHooks,
  type EventBusStatus,
  type EventEnvelope,
  type EventHandler,
  EventHandlers,
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
  readonly #handlers: EventHandlers;
  readonly #inFlight = new Set<Promise<void>>();
  #closed = false;

  constructor(
    readonly instanceId: string,
    private readonly maxPayloadBytes: number,
    hooks: EventBusHooks,
  ) {
    this.#handlers = new EventHandlers(hooks.onHandlerError);
  }

  async publish(type: EventType, data: Record<string, unknown>): Promise<EventEnvelope> {
    if (this.#closed) throw closedError(this.kind);
    const { envelope, json } = makeEnvelope(type, data, this.instanceId, this.maxPayloadBytes, randomUUID());
    // Delivered from its JSON, as it would come off the wire (each handler gets its own copy).
    const run = new Promise<void>((r) => setImmediate(r)).then(async () => {
      await this.#handlers.deliver(JSON.parse(json) as EventEnvelope);
    });
    this.#inFlight.add(run);
    void run.finally(() => this.#inFlight.delete(run));
    return envelope;
  }

  subscribe(types: readonly EventType[], handler: EventHandler): () => void {
    if (this.#closed) throw closedError(this.kind);
    return this.#handlers.add(types, handler);
  }

  status(): EventBusStatus {
    return {
      connected: !this.#closed,
      pending: this.#inFlight.size,
      handled: this.#handlers.handled,
      handlerErrors: this.#handlers.errors,
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
}
