import { KapokError } from '../../core/errors.js';
import type { KVLocal, KVScript } from '../../ports/kv.js';

/**
 * Quota scripts: both limits of one caller checked and charged in one atomic step (one Redis round
 * trip), so two Kapok processes on one Redis admit exactly `limit` per window between them. Fixed
 * windows start at a caller's first request; a limit of 0 means unlimited. Lua and local halves are
 * written step for step alike.
 *
 * admit: keys [requestsKey, tokensKey], args [rpm, tpm, windowMs, tokens] →
 *   [allowed 0|1, reason 0 ok|1 requests|2 tokens|3 too large, reqRemaining, reqResetMs, tokRemaining, tokResetMs]
 * settle: keys [tokensKey], args [delta (may be negative), windowMs] → new count
 */
export const REASONS = ['ok', 'requests', 'tokens', 'too_large'] as const;
export type AdmitReason = (typeof REASONS)[number];

export interface AdmitResult {
  allowed: boolean;
  reason: AdmitReason;
  requestsRemaining: number;
  requestsResetMs: number;
  tokensRemaining: number;
  tokensResetMs: number;
}

const NUM = '^%-?%d+$';

export const admitScript: KVScript<AdmitResult> = {
  name: 'gatewayAdmit',
  lua: `
local function num(v) if type(v) ~= 'string' or #v > 15 or not string.match(v, '${NUM}') then return nil end return tonumber(v) end
local rpm, tpm, window, cost = num(ARGV[1]), num(ARGV[2]), num(ARGV[3]), num(ARGV[4])
if #KEYS ~= 2 or not rpm or not tpm or not window or not cost or window < 1 or cost < 0 then
  return redis.error_reply('ERR gatewayAdmit: keys [requests, tokens], args [rpm, tpm, windowMs, tokens]')
end
local function load(key)
  local used = tonumber(redis.call('GET', key) or '0') or 0
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then return 0, window, true end
  return used, ttl, false
end
local ru, rttl, rnew = load(KEYS[1])
local tu, tttl, tnew = load(KEYS[2])
local function left(limit, used) if limit == 0 then return -1 end local l = limit - used if l < 0 then l = 0 end return l end
if rpm > 0 and ru + 1 > rpm then return {0, 1, left(rpm, ru), rttl, left(tpm, tu), tttl} end
if tpm > 0 and cost > tpm then return {0, 3, left(rpm, ru), rttl, left(tpm, tu), tttl} end
if tpm > 0 and tu + cost > tpm then return {0, 2, left(rpm, ru), rttl, left(tpm, tu), tttl} end
local function charge(key, used, ttl, fresh)
  if fresh then redis.call('SET', key, string.format('%d', used), 'PX', ttl)
  else redis.call('SET', key, string.format('%d', used), 'KEEPTTL') end
end
if rpm > 0 then ru = ru + 1 charge(KEYS[1], ru, rttl, rnew) end
if tpm > 0 then tu = tu + cost charge(KEYS[2], tu, tttl, tnew) end
return {1, 0, left(rpm, ru), rttl, left(tpm, tu), tttl}
`,
  local(kv: KVLocal, keys: string[], args: string[]): AdmitResult {
    const [rpm, tpm, window, cost] = args.map(num);
    if (
      keys.length !== 2 ||
      rpm === undefined ||
      tpm === undefined ||
      window === undefined ||
      cost === undefined ||
      window < 1 ||
      cost < 0
    ) {
      throw new KapokError(
        'KAPOK_KV_COMMAND',
        'gatewayAdmit: keys [requests, tokens], args [rpm, tpm, windowMs, tokens]',
      );
    }
    // A missing key (or one without TTL) starts a fresh window now.
    const load = (key: string): [number, number] => {
      const used = Number(kv.get(key) ?? '0') || 0;
      const ttl = kv.pttl(key);
      return ttl < 0 ? [0, window] : [used, ttl];
    };
    const [rk, tk] = keys as [string, string];
    let [ru, rttl] = load(rk);
    let [tu, tttl] = load(tk);
    const left = (limit: number, used: number) => (limit === 0 ? -1 : Math.max(limit - used, 0));
    const res = (allowed: boolean, reason: number) => ({
      allowed,
      reason: REASONS[reason] as AdmitReason,
      requestsRemaining: left(rpm, ru),
      requestsResetMs: rttl,
      tokensRemaining: left(tpm, tu),
      tokensResetMs: tttl,
    });
    if (rpm > 0 && ru + 1 > rpm) return res(false, 1);
    if (tpm > 0 && cost > tpm) return res(false, 3);
    if (tpm > 0 && tu + cost > tpm) return res(false, 2);
    // An existing window keeps its expiry: ttl is what is left of it.
    if (rpm > 0) {
      ru += 1;
      kv.set(rk, String(ru), rttl);
    }
    if (tpm > 0) {
      tu += cost;
      kv.set(tk, String(tu), tttl);
    }
    return res(true, 0);
  },
  parse(raw: unknown): AdmitResult {
    const a = (raw as unknown[]).map(Number);
    return {
      allowed: a[0] === 1,
      reason: REASONS[a[1] as number] ?? 'ok',
      requestsRemaining: a[2] as number,
      requestsResetMs: a[3] as number,
      tokensRemaining: a[4] as number,
      tokensResetMs: a[5] as number,
    };
  },
};

export const settleScript: KVScript<number> = {
  name: 'gatewaySettle',
  lua: `
local function num(v) if type(v) ~= 'string' or #v > 15 or not string.match(v, '${NUM}') then return nil end return tonumber(v) end
local delta, window = num(ARGV[1]), num(ARGV[2])
if #KEYS ~= 1 or not delta or not window or window < 1 then
  return redis.error_reply('ERR gatewaySettle: keys [tokens], args [delta, windowMs]')
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  if delta <= 0 then return 0 end
  redis.call('SET', KEYS[1], string.format('%d', delta), 'PX', window)
  return delta
end
local used = (tonumber(redis.call('GET', KEYS[1]) or '0') or 0) + delta
if used < 0 then used = 0 end
redis.call('SET', KEYS[1], string.format('%d', used), 'KEEPTTL')
return used
`,
  local(kv: KVLocal, keys: string[], args: string[]): number {
    const [delta, window] = args.map(num);
    if (keys.length !== 1 || delta === undefined || window === undefined || window < 1) {
      throw new KapokError('KAPOK_KV_COMMAND', 'gatewaySettle: keys [tokens], args [delta, windowMs]');
    }
    const key = keys[0] as string;
    const ttl = kv.pttl(key);
    if (ttl < 0) {
      if (delta <= 0) return 0;
      kv.set(key, String(delta), window);
      return delta;
    }
    const used = Math.max((Number(kv.get(key) ?? '0') || 0) + delta, 0);
    kv.set(key, String(used), ttl);
    return used;
  },
  parse: (raw) => Number(raw),
};

function num(v: string | undefined): number | undefined {
  return v !== undefined && v.length <= 15 && /^-?[0-9]+$/.test(v) ? Number(v) : undefined;
}
