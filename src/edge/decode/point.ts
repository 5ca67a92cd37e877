/**
 * One decoded telemetry point: what sinks store and the fan-out streams. The type is the
 * time-series port's; decoders set keys through put(), so `__proto__` is an own key, and truncate
 * line-protocol nanoseconds to ms.
 */
export type { FieldValue, Point } from '../../ports/timeseries.js';

/** A decode failure; `reason` is short, secret-free and goes to the dead-letter table. */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';
  /** Line protocol: the 1-based line of the body that failed (the HTTP write API reports it). */
  readonly line: number | undefined;
  constructor(message: string, line?: number) {
    super(message);
    this.line = line;
  }
}

/** Longest measurement, device, tag or field name accepted. */
export const MAX_NAME = 256;
/** Most fields (or tags) in one point. */
export const MAX_KEYS = 1024;
/** Most points in one payload. */
export const MAX_POINTS = 100_000;

export function checkName(what: string, s: string): string {
  if (s.length === 0) throw new DecodeError(`empty ${what}`);
  if (s.length > MAX_NAME) throw new DecodeError(`${what} longer than ${MAX_NAME} characters`);
  return s;
}

/** A plain object (fast hidden classes; null-prototype objects are dictionary-mode and slower). */
export function dict<T>(): Record<string, T> {
  return {};
}

/** obj[k] = v, except that `__proto__` becomes an own property instead of replacing the prototype. */
export function put<T>(obj: Record<string, T>, k: string, v: T): void {
  if (k === '__proto__')
    Object.defineProperty(obj, k, { value: v, enumerable: true, writable: true, configurable: true });
  else obj[k] = v;
}
