/**
 * The Redis KV on ioredis. The adapter prefixes every key itself (script keys included), runs scripts
 * with EVALSHA and falls back to EVAL when the server answers NOSCRIPT, and turns every Redis or
 * network error into a catalogue error. Connection errors never go unhandled: they are passed to the
 * optional onError callback while ioredis reconnects.
 */
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { KapokError, messageOf } from '../../core/errors.js';
import {
  checkIncrBy,
  checkKey,
  checkScriptCall,
  checkTtl,
  checkValue,
  type KV,
  type KVScript,
} from '../../ports/kv.js';

export interface RedisKVOptions {
  /** redis://[user:password@]host:port[/db] or rediss:// for TLS. */
  url: string;
  /** Put in front of every key, script keys included. Default 'kapok:'. */
  keyPrefix?: string;
  /** Limit for establishing a connection. Default 5000. */
  connectTimeoutMs?: number;
  /** Limit for one command's answer. Default 2000. */
  commandTimeoutMs?: number;
  /** Shown by CLIENT LIST. Default 'kapok'. */
  connectionName?: string;
  /** Connection errors after start (Redis restarting, network cut); ioredis keeps reconnecting. */
  onError?: (err: KapokError) => void;
}

/** INCRBY that sets a TTL only when it creates the key, atomically. */
const INCR_WITH_TTL: KVScript<number> = {
  name: 'kapok.incrWithTtl',
  lua: `local existed = redis.call('EXISTS', KEYS[1])
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if existed == 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return v`,
  local: () => {
    throw new Error('used by the Redis adapter only');
  },
};

const UNAVAILABLE =
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|EPIPE|Connection is closed|Command timed out|Stream isn't writeable|enableOfflineQueue|max retries|LOADING|READONLY|MASTERDOWN|NOAUTH|WRONGPASS|NOPERM|OOM|^BUSY/;

export async function createRedisKV(options: RedisKVOptions): Promise<KV> {
  const opts = checkOptions(options);
  const target = describeRedisUrl(opts.url);
  const client = new Redis(opts.url, {
    lazyConnect: true,
    connectTimeout: opts.connectTimeoutMs,
    // commandTimeout is set once connected: ioredis leaves the timer of a command it flushed on a
    // failed connect running, which would hold a failing `kapok` command open for that long.
    connectionName: opts.connectionName,
    // Grace before a disconnect() destroys the socket; its timer also outlives a refused connection,
    // and a short one lets a failing `kapok` command exit at once.
    disconnectTimeout: 100,
    maxRetriesPerRequest: 2,
    retryStrategy: (times) => Math.min(100 * 2 ** times, 2000),
  });
  const kv = new RedisStore(client, opts, target);
  let lastError: unknown;
  let started = false;
  client.on('error', (err: unknown) => {
    lastError = err;
    if (!started) return;
    try {
      opts.onError?.(kv.mapError(err));
    } catch {
      // A throwing callback must not turn a recoverable connection error into a crash.
    }
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.connect(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${opts.connectTimeoutMs} ms`)),
          opts.connectTimeoutMs,
        );
      }),
    ]);
  } catch (err) {
    client.disconnect();
    const reason = lastError ?? err;
    throw new KapokError(
      'KAPOK_KV_UNAVAILABLE',
      `Redis at ${target} is not reachable: ${kv.scrub(messageOf(reason))}. Check the KV URL (host, port, ` +
        'password) and that Redis is running.',
      { cause: sanitize(reason), details: { target } },
    );
  } finally {
    clearTimeout(timer);
  }
  client.options.commandTimeout = opts.commandTimeoutMs;
  started = true;
  return kv;
}

function checkOptions(
  options: RedisKVOptions,
): Required<Omit<RedisKVOptions, 'onError'>> & Pick<RedisKVOptions, 'onError'> {
  const fail = (option: string, expected: string, got: string): never => {
    throw new KapokError(
      'KAPOK_CONFIG_INVALID',
      `redis KV option ${option} must be ${expected} (got ${got})`,
      {
        details: { option },
      },
    );
  };
  if (typeof options !== 'object' || options === null) fail('options', 'an object', String(options));
  const {
    url,
    keyPrefix = 'kapok:',
    connectTimeoutMs = 5000,
    commandTimeoutMs = 2000,
    connectionName = 'kapok',
    onError,
  } = options;
  if (typeof url !== 'string' || url.trim() === '') {
    fail('url', 'a redis://host:port URL', url === '' ? 'an empty string' : typeof url);
  }
  let scheme = '';
  try {
    scheme = new URL(url).protocol;
  } catch {
    fail('url', 'a redis://host:port URL', 'a string that is not a URL');
  }
  if (scheme !== 'redis:' && scheme !== 'rediss:')
    fail('url', 'a redis:// or rediss:// URL', `scheme ${scheme}`);
  if (typeof keyPrefix !== 'string') fail('keyPrefix', 'a string', typeof keyPrefix);
  if (typeof connectionName !== 'string' || !/^[!-~]{1,64}$/.test(connectionName)) {
    fail('connectionName', 'up to 64 printable characters without spaces', JSON.stringify(connectionName));
  }
  for (const [name, v] of [
    ['connectTimeoutMs', connectTimeoutMs],
    ['commandTimeoutMs', commandTimeoutMs],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < 1 || v > 2_147_483_647)
      fail(name, 'an integer number of ms >= 1', String(v));
  }
  if (onError !== undefined && typeof onError !== 'function') fail('onError', 'a function', typeof onError);
  return { url, keyPrefix, connectTimeoutMs, commandTimeoutMs, connectionName, onError };
}

/** host:port/db of a redis URL, for messages: never the password. */
export function describeRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname || 'localhost'}:${u.port || '6379'}/${u.pathname.replace(/^\//, '') || '0'}`;
  } catch {
    return '(unparsable URL)';
  }
}

/** ioredis attaches the failed command with its arguments (values, an AUTH password) to errors. */
function sanitize(err: unknown): unknown {
  const e = err as { command?: { name?: unknown; args?: unknown } } | null;
  if (e && typeof e === 'object' && e.command && typeof e.command === 'object') {
    e.command = { name: e.command.name };
  }
  return err;
}

class RedisStore implements KV {
  readonly kind = 'redis' as const;
  readonly #client: Redis;
  readonly #prefix: string;
  readonly #target: string;
  readonly #password: string;
  readonly #shas = new WeakMap<object, string>();
  #closing: Promise<void> | undefined;

  constructor(client: Redis, opts: ReturnType<typeof checkOptions>, target: string) {
    this.#client = client;
    this.#prefix = opts.keyPrefix;
    this.#target = target;
    let password = '';
    try {
      password = decodeURIComponent(new URL(opts.url).password);
    } catch {}
    this.#password = password;
  }

  get(key: string): Promise<string | null> {
    return this.#op(() => {
      checkKey(key);
      return this.#client.get(this.#prefix + key);
    });
  }

  set(key: string, value: string, opts: { ttlMs?: number; ifAbsent?: boolean } = {}): Promise<boolean> {
    return this.#op(async () => {
      checkKey(key);
      checkValue(value);
      checkTtl(opts.ttlMs);
      const extra: Array<string | number> = [];
      if (opts.ttlMs !== undefined) extra.push('PX', opts.ttlMs);
      if (opts.ifAbsent) extra.push('NX');
      return (await this.#client.call('SET', this.#prefix + key, value, ...extra)) === 'OK';
    });
  }

  del(key: string): Promise<boolean> {
    return this.#op(async () => {
      checkKey(key);
      return (await this.#client.del(this.#prefix + key)) > 0;
    });
  }

  incr(key: string, by = 1, opts: { ttlMs?: number } = {}): Promise<number> {
    return this.#op(() => {
      checkKey(key);
      checkIncrBy(by);
      checkTtl(opts.ttlMs);
      if (opts.ttlMs === undefined) return this.#client.incrby(this.#prefix + key, by);
      return this.#eval(INCR_WITH_TTL, [key], [String(by), String(opts.ttlMs)]) as Promise<number>;
    });
  }

  pttl(key: string): Promise<number> {
    return this.#op(() => {
      checkKey(key);
      return this.#client.pttl(this.#prefix + key);
    });
  }

  run<R>(script: KVScript<R>, keys: string[], args: string[]): Promise<R> {
    return this.#op(async () => {
      checkScriptCall(script, keys, args);
      let raw: unknown;
      try {
        raw = await this.#eval(script, keys, args);
      } catch (err) {
        const mapped = this.mapError(err);
        if (mapped.code !== 'KAPOK_KV_COMMAND') throw mapped;
        throw new KapokError(
          'KAPOK_KV_COMMAND',
          `script ${script.name} failed: ${this.scrub(messageOf(err))}`,
          {
            cause: sanitize(err),
          },
        );
      }
      if (!script.parse) return raw as R;
      try {
        return script.parse(raw);
      } catch (err) {
        if (err instanceof KapokError) throw err;
        throw new KapokError(
          'KAPOK_KV_COMMAND',
          `script ${script.name}: cannot read its answer: ${messageOf(err)}`,
          {
            cause: err,
          },
        );
      }
    });
  }

  ping(): Promise<void> {
    return this.#op(async () => {
      await this.#client.ping();
    });
  }

  close(): Promise<void> {
    this.#closing ??= this.#client.quit().then(
      () => undefined,
      () => this.#client.disconnect(),
    );
    return this.#closing;
  }

  async #eval(script: KVScript<unknown>, keys: string[], args: string[]): Promise<unknown> {
    let sha = this.#shas.get(script);
    if (!sha) {
      sha = createHash('sha1').update(script.lua).digest('hex');
      this.#shas.set(script, sha);
    }
    const prefixed = keys.map((k) => this.#prefix + k);
    try {
      return await this.#client.evalsha(sha, prefixed.length, ...prefixed, ...args);
    } catch (err) {
      if (!messageOf(err).startsWith('NOSCRIPT')) throw err;
      return this.#client.eval(script.lua, prefixed.length, ...prefixed, ...args);
    }
  }

  async #op<T>(work: () => Promise<T> | T): Promise<T> {
    if (this.#closing)
      throw new KapokError('KAPOK_KV_CLOSED', 'the Redis KV was used after close(): open a new one');
    try {
      return await work();
    } catch (err) {
      throw this.mapError(err);
    }
  }

  scrub(message: string): string {
    return this.#password.length >= 3 ? message.split(this.#password).join('***') : message;
  }

  mapError(err: unknown): KapokError {
    if (err instanceof KapokError) return err;
    const cause = sanitize(err);
    const msg = this.scrub(messageOf(err));
    const name = (err as { name?: unknown } | null)?.name;
    if (msg.includes('WRONGTYPE') || msg.includes('not an integer')) {
      return new KapokError(
        'KAPOK_KV_TYPE',
        `the key holds another type of value than the operation needs: ${msg}`,
        {
          cause,
        },
      );
    }
    if (name === 'MaxRetriesPerRequestError' || UNAVAILABLE.test(msg)) {
      return new KapokError(
        'KAPOK_KV_UNAVAILABLE',
        `Redis at ${this.#target} is not reachable or not accepting commands: ${msg}. Check that Redis is ` +
          'running and the KV URL.',
        { cause, details: { target: this.#target } },
      );
    }
    return new KapokError('KAPOK_KV_COMMAND', `Redis command failed: ${msg}`, { cause });
  }
}
