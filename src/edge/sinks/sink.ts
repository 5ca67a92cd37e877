import type { Point } from '../decode/index.js';

/**
 * A time-series sink. `write` resolves only once the points are durably in the sink: the runner
 * advances the sink's spool cursor after that, so a write may be repeated after a crash or a
 * retry (at-least-once). Sinks that can make repeats idempotent (same series and ts) do so.
 */
export interface Sink {
  readonly name: string;
  write(points: readonly Point[]): Promise<void>;
  /** Cheap liveness probe for /readyz. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
