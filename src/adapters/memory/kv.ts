/**
 * The in-process KV (the default backend): a real store, not a mock. TTLs in milliseconds; an expired
 * key is invisible at once and removed by an unref'd sweeper that pops a min-heap of expiry times
 * (no full scans). Bounded by maxKeys: when a new key would exceed it, expired keys go first, then
 * the least recently written (`evictions` counts the live keys dropped that way). Scripts run their
 * `local` half synchronously, so they are atomic like Lua on Redis.
 */
import { KapokError, messageOf } from '../../core/errors.js';
import {
  checkIncrBy,
  checkKey,
  checkScriptCall,
  checkTtl,
  checkValue,
  type KV,
  KV_INTEGER,
  type KVLocal,
  type KVScript,
} from '../../ports/kv.js';

export interface MemoryKVOptions {
  /** Most keys held; default 100000. */
  maxKeys?: number;
  /** How often expired keys are swept; default 1000. */
  sweepIntervalMs?: number;
  /** Clock in whole ms since the epoch (tests inject one); default a monotonic wall clock. */
  now?: () => number;
}

export interface MemoryKV extends KV {
  readonly kind: 'memory';
  /** Live keys dropped because maxKeys was reached. */
  readonly evictions: number;
  /** Keys held, including expired ones not swept yet. */
  readonly size: number;
}

/** Most expired keys removed per sweep tick, so one tick never blocks the event loop for long. */
const SWEEP_BUDGET = 10_000;

interface Entry {
  value: string;
  /** ms since the epoch; 0 means no expiry. */
  expiresAt: number;
}

export async function createMemoryKV(options: MemoryKVOptions = {}): Promise<MemoryKV> {
  return new MemoryStore(checkOptions(options));
}

function checkOptions(options: MemoryKVOptions): Required<MemoryKVOptions> {
  const fail = (option: string, expected: string, got: unknown): never => {
    throw new KapokError(
      'KAPOK_CONFIG_INVALID',
      `memory KV option ${option} must be ${expected} (got ${String(got)})`,
      {
        details: { option },
      },
    );
  };
  if (typeof options !== 'object' || options === null) fail('options', 'an object', options);
  const monotonic = () => Math.floor(performance.timeOrigin + performance.now());
  const { maxKeys = 100_000, sweepIntervalMs = 1000, now = monotonic } = options;
  if (!Number.isSafeInteger(maxKeys) || maxKeys < 1) fail('maxKeys', 'an integer >= 1', maxKeys);
  if (!Number.isSafeInteger(sweepIntervalMs) || sweepIntervalMs < 1 || sweepIntervalMs > 2_147_483_647) {
    fail('sweepIntervalMs', 'an integer number of milliseconds >= 1', sweepIntervalMs);
  }
  if (typeof now !== 'function') fail('now', 'a function', typeof now);
  return { maxKeys, sweepIntervalMs, now };
}

class MemoryStore implements MemoryKV {
  readonly kind = 'memory' as const;
  readonly #map = new Map<string, Entry>();
  readonly #heap = new ExpiryHeap();
  readonly #maxKeys: number;
  readonly #now: () => number;
  readonly #timer: NodeJS.Timeout;
  readonly #local: KVLocal;
  #withTtl = 0;
  #evictions = 0;
  #closed = false;

  constructor(opts: Required<MemoryKVOptions>) {
    this.#maxKeys = opts.maxKeys;
    this.#now = opts.now;
    this.#timer = setInterval(() => this.#sweep(this.#now(), SWEEP_BUDGET), opts.sweepIntervalMs);
    this.#timer.unref();
    this.#local = {
      get: (key) => this.#live(key)?.value ?? null,
      set: (key, value, ttlMs) => {
        checkKey(key);
        checkValue(value);
        checkTtl(ttlMs);
        this.#write(key, value, ttlMs === undefined ? 0 : this.#now() + ttlMs);
      },
      del: (key) => this.#delete(key),
      pttl: (key) => this.#pttl(key),
      now: () => this.#now(),
    };
  }

  get evictions(): number {
    return this.#evictions;
  }

  get size(): number {
    return this.#map.size;
  }

  get(key: string): Promise<string | null> {
    return this.#op(() => {
      checkKey(key);
      return this.#live(key)?.value ?? null;
    });
  }

  set(key: string, value: string, opts: { ttlMs?: number; ifAbsent?: boolean } = {}): Promise<boolean> {
    return this.#op(() => {
      checkKey(key);
      checkValue(value);
      checkTtl(opts.ttlMs);
      if (opts.ifAbsent && this.#live(key)) return false;
      this.#write(key, value, opts.ttlMs === undefined ? 0 : this.#now() + opts.ttlMs);
      return true;
    });
  }

  del(key: string): Promise<boolean> {
    return this.#op(() => {
      checkKey(key);
      return this.#delete(key);
    });
  }

  incr(key: string, by = 1, opts: { ttlMs?: number } = {}): Promise<number> {
    return this.#op(() => {
      checkKey(key);
      checkIncrBy(by);
      checkTtl(opts.ttlMs);
      const e = this.#live(key);
      if (!e) {
        this.#write(key, String(by), opts.ttlMs === undefined ? 0 : this.#now() + opts.ttlMs);
        return by;
      }
      const current = KV_INTEGER.test(e.value) ? Number(e.value) : Number.NaN;
      if (!Number.isSafeInteger(current)) {
        throw new KapokError(
          'KAPOK_KV_TYPE',
          `incr: key ${preview(key)} holds a value that is not an integer`,
        );
      }
      const next = current + by;
      if (!Number.isSafeInteger(next)) {
        throw new KapokError(
          'KAPOK_KV_COMMAND',
          `incr: key ${preview(key)} would overflow the integer range`,
        );
      }
      this.#write(key, String(next), e.expiresAt);
      return next;
    });
  }

  pttl(key: string): Promise<number> {
    return this.#op(() => {
      checkKey(key);
      return this.#pttl(key);
    });
  }

  run<R>(script: KVScript<R>, keys: string[], args: string[]): Promise<R> {
    return this.#op(() => {
      checkScriptCall(script, keys, args);
      try {
        return script.local(this.#local, [...keys], [...args]);
      } catch (err) {
        if (err instanceof KapokError) throw err;
        throw new KapokError('KAPOK_KV_COMMAND', `script ${script.name} failed: ${messageOf(err)}`, {
          cause: err,
        });
      }
    });
  }

  ping(): Promise<void> {
    return this.#op(() => undefined);
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      clearInterval(this.#timer);
      this.#map.clear();
      this.#heap.clear();
      this.#withTtl = 0;
    }
    return Promise.resolve();
  }

  #op<T>(work: () => T): Promise<T> {
    if (this.#closed) {
      return Promise.reject(
        new KapokError('KAPOK_KV_CLOSED', 'the memory KV was used after close(): open a new one'),
      );
    }
    try {
      return Promise.resolve(work());
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** The entry of a key if it exists and has not expired (an expired one is removed on the way). */
  #live(key: string): Entry | undefined {
    const e = this.#map.get(key);
    if (e === undefined) return undefined;
    if (e.expiresAt !== 0 && e.expiresAt <= this.#now()) {
      this.#remove(key, e);
      return undefined;
    }
    return e;
  }

  #pttl(key: string): number {
    const e = this.#live(key);
    if (!e) return -2;
    return e.expiresAt === 0 ? -1 : e.expiresAt - this.#now();
  }

  #delete(key: string): boolean {
    const e = this.#live(key);
    if (!e) return false;
    this.#remove(key, e);
    return true;
  }

  /** Writes a key; it becomes the most recently written (evicted last). */
  #write(key: string, value: string, expiresAt: number): void {
    const old = this.#map.get(key);
    if (old) {
      this.#remove(key, old);
    } else if (this.#map.size >= this.#maxKeys) {
      this.#makeRoom();
    }
    this.#map.set(key, { value, expiresAt });
    if (expiresAt !== 0) {
      this.#withTtl++;
      // An unchanged expiry already has its heap entry.
      if (old?.expiresAt !== expiresAt) this.#heap.push(key, expiresAt);
      if (this.#heap.size > 2 * this.#withTtl + 1024) this.#rebuildHeap();
    }
  }

  #remove(key: string, e: Entry): void {
    this.#map.delete(key);
    if (e.expiresAt !== 0) this.#withTtl--;
    // Its heap entry stays: popped later, it no longer matches and is dropped.
  }

  #makeRoom(): void {
    this.#sweep(this.#now(), Number.POSITIVE_INFINITY);
    while (this.#map.size >= this.#maxKeys) {
      const oldest = this.#map.entries().next().value;
      if (!oldest) return;
      this.#remove(oldest[0], oldest[1]);
      this.#evictions++;
    }
  }

  #sweep(now: number, budget: number): void {
    let n = 0;
    while (n < budget) {
      const top = this.#heap.peek();
      if (!top || top.at > now) return;
      this.#heap.pop();
      const e = this.#map.get(top.key);
      if (e && e.expiresAt === top.at) this.#remove(top.key, e);
      n++;
    }
  }

  #rebuildHeap(): void {
    this.#heap.clear();
    for (const [key, e] of this.#map) if (e.expiresAt !== 0) this.#heap.push(key, e.expiresAt);
  }
}

function preview(key: string): string {
  return JSON.stringify(key.length > 64 ? `${key.slice(0, 64)}…` : key);
}

/** A binary min-heap of (expiry, key); entries may be stale and are checked against the map when popped. */
class ExpiryHeap {
  #items: Array<{ at: number; key: string }> = [];

  get size(): number {
    return this.#items.length;
  }

  clear(): void {
    this.#items = [];
  }

  peek(): { at: number; key: string } | undefined {
    return this.#items[0];
  }

  push(key: string, at: number): void {
    const items = this.#items;
    const item = { at, key };
    let i = items.length;
    items.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = items[parent] as { at: number; key: string };
      if (p.at <= at) break;
      items[i] = p;
      i = parent;
    }
    items[i] = item;
  }

  pop(): void {
    const items = this.#items;
    const last = items.pop();
    if (last === undefined || items.length === 0) return;
    let i = 0;
    const n = items.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && (items[r] as { at: number }).at < (items[l] as { at: number }).at ? r : l;
      const child = items[c] as { at: number; key: string };
      if (child.at >= last.at) break;
      items[i] = child;
      i = c;
    }
    items[i] = last;
  }
}
