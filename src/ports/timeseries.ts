/**
 * The time-series sink port: where edge writes decoded telemetry points. Adapters:
 * `adapters/sqlite/timeseries` (embedded, the default; also answers range queries),
 * `adapters/postgres/timeseries` and `adapters/influx/timeseries`.
 *
 * Contract every adapter keeps (checked by test/ports/timeseries.conformance.ts):
 * - `write` resolves only once the points are durably in the engine. The caller moves its spool
 *   cursor after that, so a batch may be written again after a crash or a retry (at-least-once):
 *   writing a point again with the same series (measurement, device, tags, field) and ts never
 *   makes a second point. An empty batch resolves at once and touches nothing.
 * - Names and tag values are stored as given (spaces, commas, quotes, backslashes, `=`, non-ASCII,
 *   `__proto__`); tags are a set (their order does not matter).
 * - Points the engine cannot store at all (bad data, not a bad engine: retrying would fail the
 *   same way) are not retried: `write` resolves with `{ rejected, reason }` counting them, and the
 *   rest of the batch is stored.
 * - Any other failure (engine down, unreachable, closed) rejects with KAPOK_EDGE_SINK, naming the
 *   sink; the caller retries the whole batch. `ping` rejects the same way.
 */

export type FieldValue = number | boolean | string;

/** One decoded telemetry point: what sinks store and edge's fan-out streams. */
export interface Point {
  measurement: string;
  device: string;
  /** Keys come from devices: set as own keys, so `__proto__` is an own key, never the prototype. */
  tags: Record<string, string>;
  fields: Record<string, FieldValue>;
  /** Milliseconds since the epoch. */
  ts: number;
}

/** What a write reports besides success: points refused as bad data (not retried). */
export interface WriteResult {
  rejected: number;
  /** Short, secret-free reason from the engine. */
  reason: string;
}

export const AGGS = ['avg', 'min', 'max', 'sum', 'count', 'last'] as const;
export type Agg = (typeof AGGS)[number];

export interface RangeQuery {
  measurement: string;
  field: string;
  /** All devices when absent. */
  device?: string;
  /** Milliseconds since the epoch, from inclusive, to exclusive. */
  from: number;
  to: number;
  /** Windows of everyMs aligned to the epoch, each reduced with `agg`; raw points when absent. */
  everyMs?: number;
  agg: Agg;
  /** Most points (raw) or windows answered; `more` tells that some were left out. */
  limit: number;
}

export interface DeviceLatest {
  device: string;
  measurement: string;
  /** Time of the device's newest point of this measurement (ms since the epoch). */
  lastSeen: number;
  /** Field values of that point. */
  latest: Record<string, unknown>;
}

/**
 * Range queries over stored points (what GET /api/edge/query and /devices answer). Booleans read
 * back as 1 and 0; strings as strings. `last` is the value of each window's newest point.
 */
export interface TimeSeriesQuery {
  range(q: RangeQuery): Promise<{ points: { ts: number; value: number | string | null }[]; more: boolean }>;
  /** Each device and measurement, ordered by device then measurement. */
  devices(limit: number): Promise<DeviceLatest[]>;
}

export interface TimeSeriesSink {
  /** Names the sink in errors, metrics and spool cursors (`embedded-0`, `influx-1`). */
  readonly name: string;
  /** Resolves with nothing when every point was stored. */
  // biome-ignore lint/suspicious/noConfusingVoidType: a sink with nothing to report may be a plain `async write() {}`
  write(points: readonly Point[]): Promise<WriteResult | void>;
  /** Cheap liveness probe for /readyz. */
  ping(): Promise<void>;
  /** Releases the engine; later calls reject with KAPOK_EDGE_SINK. Idempotent. */
  close(): Promise<void>;
  /** Present when the engine answers range queries (today the embedded sink). */
  readonly query?: TimeSeriesQuery;
}

/** A tag set as canonical JSON (sorted keys): the same tags always name the same series. */
export function tagKey(tags: Record<string, string>): string {
  const keys = Object.keys(tags);
  if (keys.length === 0) return '{}';
  keys.sort();
  const o: Record<string, string> = {};
  for (const k of keys) {
    if (k === '__proto__')
      Object.defineProperty(o, k, { value: tags[k], enumerable: true, writable: true, configurable: true });
    else o[k] = tags[k] as string;
  }
  return JSON.stringify(o);
}
