/** One decoded telemetry point: what sinks store and the fan-out streams. */
export type FieldValue = number | boolean | string;

export interface Point {
  measurement: string;
  device: string;
  /** Null-prototype objects: keys come from devices and may be `__proto__`. */
  tags: Record<string, string>;
  fields: Record<string, FieldValue>;
  /** Milliseconds since the epoch (line-protocol nanoseconds are truncated to ms). */
  ts: number;
}

/** A decode failure; `reason` is short, secret-free and goes to the dead-letter table. */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';
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

export function dict<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}
