import type * as grpc from '@grpc/grpc-js';
import { protoPath as healthProtoPath, service as healthService } from 'grpc-health-check';

/**
 * `grpc.health.v1.Health` (what Kubernetes `grpc:` probes, grpc-health-probe and Envoy call):
 *   - service "" (the server overall) follows Kapok's /readyz: SERVING when every enabled
 *     capability and backend is ready;
 *   - service "inference.GRPCInferenceService" follows inference's own readiness (repository
 *     scanned, not draining), like OIP's ServerReady.
 * Check evaluates on each call. Watch sends the current status, then each change, found by polling
 * every WATCH_POLL_MS while anyone watches. The service definition and proto come from the
 * grpc-health-check package; its HealthImplementation is not used because its Watch streams cannot
 * be ended, so a drain would wait out its whole grace period for any watcher.
 */

export const INFERENCE_SERVICE = 'inference.GRPCInferenceService';
export { healthProtoPath };

/** How often watched statuses are re-evaluated. */
export const WATCH_POLL_MS = 1000;
/** Open Watch streams at most (each costs a poll share); more are refused RESOURCE_EXHAUSTED. */
export const MAX_WATCHERS = 1000;

type Status = 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';
type WatchCall = grpc.ServerWritableStream<{ service: string }, { status: Status }>;

export interface HealthSources {
  /** Kapok overall (/readyz). */
  overall(): Promise<boolean>;
  /** The inference service. */
  inference(): boolean;
}

export class GrpcHealth {
  readonly #src: HealthSources;
  readonly #watchers = new Set<{ call: WatchCall; service: string; last: Status | null }>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #polling = false;

  constructor(src: HealthSources) {
    this.#src = src;
  }

  async status(service: string): Promise<Status> {
    if (this.#closed)
      return service === '' || service === INFERENCE_SERVICE ? 'NOT_SERVING' : 'SERVICE_UNKNOWN';
    if (service === '') return (await this.#src.overall().catch(() => false)) ? 'SERVING' : 'NOT_SERVING';
    if (service === INFERENCE_SERVICE) return this.#src.inference() ? 'SERVING' : 'NOT_SERVING';
    return 'SERVICE_UNKNOWN';
  }

  addToServer(server: grpc.Server): void {
    server.addService(healthService as unknown as grpc.ServiceDefinition, {
      check: (call: grpc.ServerUnaryCall<{ service: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        this.status(call.request.service).then((status) =>
          status === 'SERVICE_UNKNOWN'
            ? cb({
                code: 5 /* NOT_FOUND */,
                details: `unknown service ${call.request.service.slice(0, 200)}`,
              })
            : cb(null, { status }),
        );
      },
      watch: (call: WatchCall) => this.#watch(call),
      // Newer clients (grpc 1.70+) may ask List; the two services above are all there is.
      list: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => {
        Promise.all([this.status(''), this.status(INFERENCE_SERVICE)]).then(([all, inf]) =>
          cb(null, { statuses: { '': { status: all }, [INFERENCE_SERVICE]: { status: inf } } }),
        );
      },
    });
  }

  #watch(call: WatchCall): void {
    if (this.#closed || this.#watchers.size >= MAX_WATCHERS) {
      call.destroy(
        Object.assign(new Error(`more than ${MAX_WATCHERS} health watchers`), {
          code: 8 /* RESOURCE_EXHAUSTED */,
        }),
      );
      return;
    }
    const w = { call, service: call.request.service, last: null as Status | null };
    this.#watchers.add(w);
    const drop = () => {
      this.#watchers.delete(w);
      if (this.#watchers.size === 0) this.#stopPolling();
    };
    call.on('cancelled', drop);
    call.on('error', drop);
    call.on('close', drop);
    void this.#push(w);
    this.#timer ??= setInterval(() => void this.#poll(), WATCH_POLL_MS).unref();
  }

  async #push(w: { call: WatchCall; service: string; last: Status | null }): Promise<void> {
    const status = await this.status(w.service);
    if (status === w.last || !this.#watchers.has(w)) return;
    w.last = status;
    w.call.write({ status });
  }

  async #poll(): Promise<void> {
    // A slow readiness check (a backend timing out) must not stack polls up.
    if (this.#polling) return;
    this.#polling = true;
    try {
      // One evaluation per service per tick, however many watch it.
      const cache = new Map<string, Promise<Status>>();
      for (const w of this.#watchers) {
        let p = cache.get(w.service);
        if (!p) {
          p = this.status(w.service);
          cache.set(w.service, p);
        }
        const status = await p;
        if (status !== w.last && this.#watchers.has(w)) {
          w.last = status;
          w.call.write({ status });
        }
      }
    } finally {
      this.#polling = false;
    }
  }

  #stopPolling(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Before the server shuts down: watchers get NOT_SERVING and their streams end (no drain wait). */
  close(): void {
    this.#closed = true;
    this.#stopPolling();
    for (const w of this.#watchers) {
      const known = w.service === '' || w.service === INFERENCE_SERVICE;
      if (known && w.last !== 'NOT_SERVING') w.call.write({ status: 'NOT_SERVING' });
      w.call.end();
    }
    this.#watchers.clear();
  }
}
