import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { inspect } from 'node:util';
import { Redis } from 'ioredis';
import { createRedisKV, describeRedisUrl, type RedisKVOptions } from '../../src/adapters/redis/kv.js';
import { isKapokError, type KapokError } from '../../src/core/errors.js';
import { serviceAvailable } from '../helpers/services.js';
import { kvConformance } from '../ports/kv.conformance.js';
import { fixedWindowRateLimit, rateLimitArgs } from '../ports/kv-scripts.js';

const REDIS_URL = process.env.KAPOK_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `kapok-test:${randomBytes(5).toString('hex')}:`;

function rawClient(): Redis {
  return new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
}

async function withRaw<T>(work: (r: Redis) => Promise<T>): Promise<T> {
  const r = rawClient();
  let lastError: unknown;
  r.on('error', (err) => {
    lastError = err; // reported through the rejection below
  });
  try {
    await r.connect().catch((err) => {
      throw lastError ?? err;
    });
    return await work(r);
  } finally {
    r.disconnect();
  }
}

/** Deletes every key of this run. */
async function deleteRunKeys(): Promise<void> {
  await withRaw(async (r) => {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await r.del(...keys);
    } while (cursor !== '0');
  });
}

const { skip } = await serviceAvailable(
  'redis',
  () =>
    withRaw(async (r) => {
      await r.ping();
    }),
  { where: describeRedisUrl(REDIS_URL) },
);

describe('redis KV (needs Redis)', { skip }, () => {
  after(deleteRunKeys);

  kvConformance('redis', () => createRedisKV({ url: REDIS_URL, keyPrefix: prefix }));

  describe('redis KV adapter', () => {
    let raw: Redis;
    before(async () => {
      raw = rawClient();
      await raw.connect();
    });
    after(() => raw.disconnect());

    it('puts keyPrefix in front of every key, script keys included', async () => {
      const kv = await createRedisKV({ url: REDIS_URL, keyPrefix: prefix });
      try {
        await kv.set('plain', 'v');
        assert.equal(await raw.get(`${prefix}plain`), 'v');
        assert.equal(await raw.get('plain'), null);
        await kv.run(fixedWindowRateLimit, ['limited'], rateLimitArgs(5, 10_000));
        assert.equal(await raw.get(`${prefix}limited`), '1');
        await kv.incr('counted', 1, { ttlMs: 10_000 });
        assert.equal(await raw.get(`${prefix}counted`), '1');
      } finally {
        await kv.close();
      }
    });

    it('loads a script again with EVAL when the server forgot it (NOSCRIPT)', async () => {
      const kv = await createRedisKV({ url: REDIS_URL, keyPrefix: prefix });
      try {
        const k = `noscript:${randomBytes(3).toString('hex')}`;
        assert.equal((await kv.run(fixedWindowRateLimit, [k], rateLimitArgs(5, 10_000))).remaining, 4);
        await raw.script('FLUSH');
        assert.equal((await kv.run(fixedWindowRateLimit, [k], rateLimitArgs(5, 10_000))).remaining, 3);
      } finally {
        await kv.close();
      }
    });

    it('maps WRONGTYPE from any command or script to KAPOK_KV_TYPE', async () => {
      const kv = await createRedisKV({ url: REDIS_URL, keyPrefix: prefix });
      try {
        await raw.lpush(`${prefix}list`, 'x');
        await assert.rejects(kv.get('list'), (err) => isKapokError(err, 'KAPOK_KV_TYPE'));
        await assert.rejects(kv.incr('list'), (err) => isKapokError(err, 'KAPOK_KV_TYPE'));
        await assert.rejects(kv.incr('list', 1, { ttlMs: 100 }), (err) => isKapokError(err, 'KAPOK_KV_TYPE'));
        await assert.rejects(kv.run(fixedWindowRateLimit, ['list'], rateLimitArgs(1, 100)), (err) =>
          isKapokError(err, 'KAPOK_KV_TYPE'),
        );
      } finally {
        await kv.close();
      }
    });

    it('gives up on a command after commandTimeoutMs with KAPOK_KV_UNAVAILABLE', async () => {
      const kv = await createRedisKV({ url: REDIS_URL, keyPrefix: prefix, commandTimeoutMs: 50 });
      try {
        await raw.call('CLIENT', 'PAUSE', '400', 'WRITE');
        await assert.rejects(kv.set('paused', 'v'), (err) => {
          assert.ok(isKapokError(err, 'KAPOK_KV_UNAVAILABLE'), String(err));
          assert.match(err.message, /timed out/);
          return true;
        });
      } finally {
        await raw.call('CLIENT', 'UNPAUSE');
        await kv.close();
      }
    });

    it('names the script in the error when its Lua fails', async () => {
      const kv = await createRedisKV({ url: REDIS_URL, keyPrefix: prefix });
      try {
        const broken = { name: 'test.broken', lua: 'return error("kaput")', local: () => 1 };
        await assert.rejects(kv.run(broken, [], []), (err) => {
          assert.ok(isKapokError(err, 'KAPOK_KV_COMMAND'), String(err));
          assert.match(err.message, /script test\.broken failed: .*kaput/);
          return true;
        });
      } finally {
        await kv.close();
      }
    });

    it('keeps working after Redis drops its connection', async () => {
      const name = `kapok-test-${randomBytes(3).toString('hex')}`;
      const errors: KapokError[] = [];
      const kv = await createRedisKV({
        url: REDIS_URL,
        keyPrefix: prefix,
        connectionName: name,
        onError: (err) => errors.push(err),
      });
      try {
        await kv.set('survivor', 'v');
        const list = String(await raw.call('CLIENT', 'LIST'));
        const id = /id=(\d+) [^\n]* name=(\S+)/g;
        const ids = [...list.matchAll(id)].filter((m) => m[2] === name).map((m) => m[1] as string);
        assert.equal(ids.length, 1, 'found the adapter connection by its name');
        await raw.call('CLIENT', 'KILL', 'ID', ids[0] as string);
        assert.equal(await kv.get('survivor'), 'v');
        assert.ok(errors.every((e) => isKapokError(e)));
      } finally {
        await kv.close();
      }
    });
  });
});

// These need no running server.
describe('redis KV adapter (no server needed)', () => {
  it('fails fast with KAPOK_KV_UNAVAILABLE on an unreachable server, without leaking the password', async () => {
    const password = 's3cret-Pa55word';
    const started = Date.now();
    await assert.rejects(
      createRedisKV({ url: `redis://:${password}@127.0.0.1:1/2`, connectTimeoutMs: 2000 }),
      (err) => {
        assert.ok(isKapokError(err, 'KAPOK_KV_UNAVAILABLE'), String(err));
        assert.match(err.message, /127\.0\.0\.1:1\/2/);
        assert.ok(!inspect(err, { depth: 10 }).includes(password), 'the error leaks the password');
        assert.ok(!JSON.stringify(err.toJSON()).includes(password));
        return true;
      },
    );
    assert.ok(Date.now() - started < 5000, 'gave up within the connect timeout');
  });

  it('rejects bad options with KAPOK_CONFIG_INVALID naming the option, never echoing the URL', async () => {
    const cases: Array<[unknown, string]> = [
      [{ url: '' }, 'url'],
      [{ url: 'not a url s3cret' }, 'url'],
      [{ url: 'http://:s3cret@cache:6379' }, 'url'],
      [{ url: 'redis://h', keyPrefix: 5 }, 'keyPrefix'],
      [{ url: 'redis://h', connectTimeoutMs: 0 }, 'connectTimeoutMs'],
      [{ url: 'redis://h', commandTimeoutMs: '1000' }, 'commandTimeoutMs'],
      [{ url: 'redis://h', connectionName: 'has space' }, 'connectionName'],
      [{ url: 'redis://h', onError: 'log' }, 'onError'],
    ];
    for (const [opts, option] of cases) {
      await assert.rejects(createRedisKV(opts as RedisKVOptions), (err) => {
        assert.ok(isKapokError(err, 'KAPOK_CONFIG_INVALID'), String(err));
        assert.match(err.message, new RegExp(`option ${option} `));
        assert.ok(!err.message.includes('s3cret'), err.message);
        return true;
      });
    }
  });

  it('describes a URL without its password', () => {
    assert.equal(describeRedisUrl('redis://:pw@cache.example:6380/3'), 'cache.example:6380/3');
    assert.equal(describeRedisUrl('rediss://user:pw@10.0.0.2'), '10.0.0.2:6379/0');
  });
});
