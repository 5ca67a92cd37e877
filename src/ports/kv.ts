/**
 * The key-value port: short-lived shared state (rate-limit counters, nonces, locks, caches).
 * Adapters: `adapters/memory` (in-process, the default) and `adapters/redis`.
 *
 * Contract every adapter keeps (checked by test/ports/kv.conformance.ts):
 * - Keys and values are strings (stored as UTF-8 by Redis: use well-formed strings; encode binary
 *   data as base64). TTLs are whole milliseconds >= 1; an expired key is gone at once for every
 *   operation. `set` without ttlMs removes a previous TTL, as Redis SET does.
 * - `incr` works on decimal integer strings only (anything else: KAPOK_KV_TYPE); a TTL given to incr
 *   applies only when this call creates the key, later calls keep the key's TTL.
 * - `run` executes a script atomically: Lua on Redis, `local` on the memory adapter. Both halves
 *   must give the same results; scripts touch only the keys passed in `keys` (the adapter prefixes
 *   those, never key names built inside the script).
 * - Errors are KapokErrors: KAPOK_KV_UNAVAILABLE, KAPOK_KV_TYPE, KAPOK_KV_COMMAND (bad arguments,
 *   script errors), KAPOK_KV_CLOSED after close().
 */
import { KapokError } from '../core/errors.js';

export interface KVScript<R> {
  readonly name: string;
  /** Run by Redis with EVALSHA (EVAL when the server does not have it cached yet). */
  readonly lua: string;
  /** The same logic, run atomically in-process by the memory adapter. */
  readonly local: (kv: KVLocal, keys: string[], args: string[]) => R;
  /** Turns the Redis reply into R; without it the raw reply is returned. */
  readonly parse?: (raw: unknown) => R;
}

/** What a script's `local` half may do: synchronous, atomic operations on the memory store. */
export interface KVLocal {
  get(key: string): string | null;
  /** Without ttlMs the key has no expiry (as Redis SET); keep a TTL by passing pttl(key). */
  set(key: string, value: string, ttlMs?: number): void;
  del(key: string): boolean;
  /** Remaining ms; -2 when the key is missing, -1 when it has no TTL. */
  pttl(key: string): number;
  /** Milliseconds since the epoch, as whole numbers (what Redis TIME gives a Lua script). */
  now(): number;
}

export interface KV {
  readonly kind: 'memory' | 'redis';
  get(key: string): Promise<string | null>;
  /** Returns false (and writes nothing) when ifAbsent is set and the key exists. */
  set(key: string, value: string, opts?: { ttlMs?: number; ifAbsent?: boolean }): Promise<boolean>;
  /** True when a key was removed. */
  del(key: string): Promise<boolean>;
  /** Adds `by` (default 1) to an integer key, creating it at 0 first; ttlMs applies only on creation. */
  incr(key: string, by?: number, opts?: { ttlMs?: number }): Promise<number>;
  /** Remaining ms; -2 when the key is missing, -1 when it has no TTL. */
  pttl(key: string): Promise<number>;
  run<R>(script: KVScript<R>, keys: string[], args: string[]): Promise<R>;
  ping(): Promise<void>;
  /** Releases the backend; later calls fail with KAPOK_KV_CLOSED. Idempotent. */
  close(): Promise<void>;
}

/** The integer form `incr` accepts (as Redis does: no sign '+', no leading zeros, no spaces). */
export const KV_INTEGER = /^(?:0|-?[1-9][0-9]*)$/;

export function checkKey(key: unknown): asserts key is string {
  if (typeof key !== 'string') {
    throw new KapokError('KAPOK_KV_COMMAND', `a KV key must be a string (got ${typeof key})`);
  }
}

export function checkValue(value: unknown): asserts value is string {
  if (typeof value !== 'string') {
    throw new KapokError(
      'KAPOK_KV_COMMAND',
      `a KV value must be a string (got ${typeof value}): serialize it (JSON, base64) first`,
    );
  }
}

export function checkTtl(ttlMs: unknown): asserts ttlMs is number | undefined {
  if (ttlMs === undefined) return;
  if (typeof ttlMs !== 'number' || !Number.isSafeInteger(ttlMs) || ttlMs < 1) {
    throw new KapokError(
      'KAPOK_KV_COMMAND',
      `ttlMs must be a whole number of milliseconds >= 1 (got ${String(ttlMs)}); leave it out for no expiry`,
    );
  }
}

export function checkIncrBy(by: unknown): asserts by is number {
  if (typeof by !== 'number' || !Number.isSafeInteger(by)) {
    throw new KapokError('KAPOK_KV_COMMAND', `incr takes a whole number to add (got ${String(by)})`);
  }
}

export function checkScriptCall(script: unknown, keys: unknown, args: unknown): void {
  const s = script as Partial<KVScript<unknown>> | null;
  if (!s || typeof s.name !== 'string' || typeof s.lua !== 'string' || typeof s.local !== 'function') {
    throw new KapokError('KAPOK_KV_COMMAND', 'run() takes a KVScript with name, lua and local');
  }
  const strings = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'string');
  if (!strings(keys) || !strings(args)) {
    throw new KapokError('KAPOK_KV_COMMAND', `script ${s.name}: keys and args must be arrays of strings`);
  }
}
