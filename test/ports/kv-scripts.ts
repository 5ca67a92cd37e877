/**
 * Sample KV scripts for the KV port's conformance suite and adapter tests (the gateway keeps its
 * own quota scripts in src/gateway/quota/scripts.ts; no product code uses these). Each has a Lua half (Redis) and a `local` half (memory adapter) written step
 * for step alike, with whole-number arithmetic only, so both give the same answers; the KV
 * conformance suite runs the same sequences against both.
 *
 * Both rate limiters take keys [key] and args [limit, windowMs, cost] (see rateLimitArgs), and answer:
 * - allowed: whether `cost` units fit now (a denied call consumes nothing; a cost above the limit is
 *   never allowed),
 * - remaining: units left after this call,
 * - resetMs: ms until the limiter is back to its full limit (0 when it is full),
 * - retryAfterMs: 0 when allowed, else ms until this cost could be allowed.
 */
import { KapokError } from '../../src/core/errors.js';
import type { KVLocal, KVScript } from '../../src/ports/kv.js';

export interface RateLimitResult {
  allowed: boolean;
  remaining: number;
  resetMs: number;
  retryAfterMs: number;
}

/** The args of both rate-limit scripts, as strings. */
export function rateLimitArgs(limit: number, windowMs: number, cost = 1): string[] {
  return [String(limit), String(windowMs), String(cost)];
}

const ARGS_LUA = (name: string) => `
if #KEYS ~= 1 then return redis.error_reply('ERR ${name}: takes exactly one key') end
local function arg(i)
  local v = ARGV[i]
  if type(v) ~= 'string' or #v > 15 or not string.match(v, '^%d+$') then return nil end
  return tonumber(v)
end
local limit, window, cost = arg(1), arg(2), arg(3)
if #ARGV ~= 3 or not limit or not window or not cost or window < 1 then
  return redis.error_reply('ERR ${name}: args are [limit, windowMs, cost], whole numbers, windowMs >= 1')
end
local key = KEYS[1]
`;

function localArgs(name: string, keys: string[], args: string[]): [string, number, number, number] {
  if (keys.length !== 1) throw new KapokError('KAPOK_KV_COMMAND', `${name}: takes exactly one key`);
  const nums = args.map((v) => (v.length <= 15 && /^[0-9]+$/.test(v) ? Number(v) : undefined));
  const [limit, window, cost] = nums;
  if (args.length !== 3 || limit === undefined || window === undefined || cost === undefined || window < 1) {
    throw new KapokError(
      'KAPOK_KV_COMMAND',
      `${name}: args are [limit, windowMs, cost], whole numbers, windowMs >= 1`,
    );
  }
  return [keys[0] as string, limit, window, cost];
}

function parseResult(raw: unknown): RateLimitResult {
  if (!Array.isArray(raw) || raw.length !== 4 || !raw.every((x) => typeof x === 'number')) {
    throw new KapokError('KAPOK_KV_COMMAND', 'a rate-limit script answered something else than 4 numbers');
  }
  const [allowed, remaining, resetMs, retryAfterMs] = raw as [number, number, number, number];
  return { allowed: allowed === 1, remaining, resetMs, retryAfterMs };
}

/** A counter per window of windowMs that starts with the first call; simplest, bursts at edges. */
export const fixedWindowRateLimit: KVScript<RateLimitResult> = {
  name: 'fixedWindowRateLimit',
  lua: `${ARGS_LUA('fixedWindowRateLimit')}
local raw = redis.call('GET', key)
local used = 0
if raw then
  if #raw > 15 or not string.match(raw, '^%d+$') then
    return redis.error_reply('WRONGTYPE fixedWindowRateLimit: the key holds something else than a counter')
  end
  used = tonumber(raw)
end
local ttl = redis.call('PTTL', key)
if ttl == -1 then
  redis.call('PEXPIRE', key, window)
  ttl = window
end
if used + cost > limit then
  if ttl < 0 then ttl = 0 end
  local left = limit - used
  if left < 0 then left = 0 end
  return {0, left, ttl, ttl}
end
used = used + cost
if ttl < 0 then
  redis.call('SET', key, string.format('%d', used), 'PX', window)
  ttl = window
else
  redis.call('SET', key, string.format('%d', used), 'KEEPTTL')
end
return {1, limit - used, ttl, 0}
`,
  local(kv: KVLocal, keys: string[], args: string[]): RateLimitResult {
    const [key, limit, window, cost] = localArgs('fixedWindowRateLimit', keys, args);
    const raw = kv.get(key);
    let used = 0;
    if (raw !== null) {
      if (raw.length > 15 || !/^[0-9]+$/.test(raw)) {
        throw new KapokError(
          'KAPOK_KV_TYPE',
          'fixedWindowRateLimit: the key holds something else than a counter',
        );
      }
      used = Number(raw);
    }
    let ttl = kv.pttl(key);
    if (ttl === -1) {
      kv.set(key, raw as string, window);
      ttl = window;
    }
    if (used + cost > limit) {
      if (ttl < 0) ttl = 0;
      const left = Math.max(limit - used, 0);
      return { allowed: false, remaining: left, resetMs: ttl, retryAfterMs: ttl };
    }
    used += cost;
    if (ttl < 0) {
      kv.set(key, String(used), window);
      ttl = window;
    } else {
      kv.set(key, String(used), ttl); // keeps the expiry: ttl is what is left of it
    }
    return { allowed: true, remaining: limit - used, resetMs: ttl, retryAfterMs: 0 };
  },
  parse: parseResult,
};

/**
 * A token bucket holding up to `limit` tokens, refilled at limit per windowMs, one whole token at a
 * time: allows bursts of `limit`, then a steady rate. State: "tokens:lastRefillMs", expiring when full.
 */
export const tokenBucketRateLimit: KVScript<RateLimitResult> = {
  name: 'tokenBucketRateLimit',
  lua: `if redis.replicate_commands then pcall(redis.replicate_commands) end
${ARGS_LUA('tokenBucketRateLimit')}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tokens, last = limit, now
local raw = redis.call('GET', key)
if raw then
  local a, b = string.match(raw, '^(%d+):(%d+)$')
  if not a or #a > 15 or #b > 15 then
    return redis.error_reply('WRONGTYPE tokenBucketRateLimit: the key holds something else than a bucket')
  end
  tokens, last = tonumber(a), tonumber(b)
  if last > now then last = now end
  local refill = math.floor((now - last) * limit / window)
  if refill > 0 then
    tokens = tokens + refill
    if tokens >= limit then
      tokens = limit
      last = now
    else
      last = last + math.floor(refill * window / limit)
    end
  end
  if tokens > limit then tokens = limit end
end
local function msUntil(n)
  if tokens >= n then return 0 end
  local ms = math.ceil((n - tokens) * window / limit) - (now - last)
  if ms < 1 then ms = 1 end
  return ms
end
if cost > tokens then
  local full = msUntil(limit)
  local retry = full
  if cost <= limit then retry = msUntil(cost) end
  return {0, tokens, full, retry}
end
tokens = tokens - cost
local full = msUntil(limit)
if full > 0 then
  redis.call('SET', key, string.format('%d:%d', tokens, last), 'PX', full)
else
  redis.call('DEL', key)
end
return {1, tokens, full, 0}
`,
  local(kv: KVLocal, keys: string[], args: string[]): RateLimitResult {
    const [key, limit, window, cost] = localArgs('tokenBucketRateLimit', keys, args);
    const now = kv.now();
    let tokens = limit;
    let last = now;
    const raw = kv.get(key);
    if (raw !== null) {
      const m = /^([0-9]+):([0-9]+)$/.exec(raw);
      if (!m || (m[1] as string).length > 15 || (m[2] as string).length > 15) {
        throw new KapokError(
          'KAPOK_KV_TYPE',
          'tokenBucketRateLimit: the key holds something else than a bucket',
        );
      }
      tokens = Number(m[1]);
      last = Number(m[2]);
      if (last > now) last = now;
      const refill = Math.floor(((now - last) * limit) / window);
      if (refill > 0) {
        tokens += refill;
        if (tokens >= limit) {
          tokens = limit;
          last = now;
        } else {
          last += Math.floor((refill * window) / limit);
        }
      }
      if (tokens > limit) tokens = limit;
    }
    const msUntil = (n: number): number => {
      if (tokens >= n) return 0;
      const ms = Math.ceil(((n - tokens) * window) / limit) - (now - last);
      return Math.max(ms, 1);
    };
    if (cost > tokens) {
      const full = msUntil(limit);
      const retry = cost <= limit ? msUntil(cost) : full;
      return { allowed: false, remaining: tokens, resetMs: full, retryAfterMs: retry };
    }
    tokens -= cost;
    const full = msUntil(limit);
    if (full > 0) kv.set(key, `${tokens}:${last}`, full);
    else kv.del(key);
    return { allowed: true, remaining: tokens, resetMs: full, retryAfterMs: 0 };
  },
  parse: parseResult,
};
