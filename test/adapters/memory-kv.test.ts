import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMemoryKV, type MemoryKVOptions } from '../../src/adapters/memory/kv.js';
import { isKapokError } from '../../src/core/errors.js';
import type { KVScript } from '../../src/ports/kv.js';
import { kvConformance } from '../ports/kv.conformance.js';
import { fixedWindowRateLimit, rateLimitArgs, tokenBucketRateLimit } from '../ports/kv-scripts.js';

kvConformance('memory', () => createMemoryKV());

/** A clock the test moves by hand. */
function fakeClock(start = 1_700_000_000_000) {
  let t = start;
  return {
    now: () => t,
    advance: (ms: number) => {
      t += ms;
    },
  };
}

describe('memory KV adapter', () => {
  it('evicts the least recently written key beyond maxKeys and counts it', async () => {
    const kv = await createMemoryKV({ maxKeys: 3 });
    for (const k of ['a', 'b', 'c']) await kv.set(k, k);
    await kv.set('d', 'd');
    assert.equal(await kv.get('a'), null);
    assert.equal(kv.evictions, 1);
    await kv.set('b', 'b2'); // rewritten: now the newest
    await kv.incr('n'); // a new key: evicts c, the oldest written
    assert.equal(await kv.get('c'), null);
    assert.deepEqual(await Promise.all(['b', 'd', 'n'].map((k) => kv.get(k))), ['b2', 'd', '1']);
    assert.equal(kv.evictions, 2);
    assert.equal(kv.size, 3);
    await kv.close();
  });

  it('drops expired keys before evicting live ones', async () => {
    const clock = fakeClock();
    const kv = await createMemoryKV({ maxKeys: 3, now: clock.now });
    await kv.set('old', 'v', { ttlMs: 100 });
    await kv.set('b', 'v');
    await kv.set('c', 'v');
    clock.advance(200);
    await kv.set('d', 'v');
    assert.equal(kv.evictions, 0, 'an expired key is not counted as evicted');
    assert.deepEqual(await Promise.all(['b', 'c', 'd'].map((k) => kv.get(k))), ['v', 'v', 'v']);
    await kv.close();
  });

  it('hides a key the moment it expires', async () => {
    const clock = fakeClock();
    const kv = await createMemoryKV({ now: clock.now });
    await kv.set('k', 'v', { ttlMs: 100 });
    clock.advance(99);
    assert.equal(await kv.get('k'), 'v');
    assert.equal(await kv.pttl('k'), 1);
    clock.advance(1);
    assert.equal(await kv.get('k'), null);
    assert.equal(await kv.pttl('k'), -2);
    await kv.close();
  });

  it('sweeps expired keys in the background, leaving the others', async () => {
    const clock = fakeClock();
    const kv = await createMemoryKV({ sweepIntervalMs: 5, now: clock.now });
    for (let i = 0; i < 50; i++) await kv.set(`t${i}`, 'v', { ttlMs: 10 + i });
    for (let i = 0; i < 5; i++) await kv.set(`keep${i}`, 'v');
    // Rewriting a key's TTL again and again must not leave stale entries behind that sweep it early.
    for (let i = 0; i < 100; i++) await kv.set('rewritten', 'v', { ttlMs: 1000 + i });
    assert.equal(kv.size, 56);
    clock.advance(500);
    for (let i = 0; i < 50 && kv.size > 6; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(kv.size, 6);
    assert.equal(await kv.get('rewritten'), 'v');
    clock.advance(600);
    for (let i = 0; i < 50 && kv.size > 5; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(kv.size, 5);
    await kv.close();
  });

  it('runs the fixed window exactly to the millisecond', async () => {
    const clock = fakeClock();
    const kv = await createMemoryKV({ now: clock.now });
    const hit = () => kv.run(fixedWindowRateLimit, ['fw'], rateLimitArgs(2, 1000));
    assert.deepEqual(await hit(), { allowed: true, remaining: 1, resetMs: 1000, retryAfterMs: 0 });
    clock.advance(400);
    assert.deepEqual(await hit(), { allowed: true, remaining: 0, resetMs: 600, retryAfterMs: 0 });
    clock.advance(599);
    assert.deepEqual(await hit(), { allowed: false, remaining: 0, resetMs: 1, retryAfterMs: 1 });
    clock.advance(1);
    assert.deepEqual(await hit(), { allowed: true, remaining: 1, resetMs: 1000, retryAfterMs: 0 });
    await kv.close();
  });

  it('refills the token bucket one whole token at a time', async () => {
    const clock = fakeClock();
    const kv = await createMemoryKV({ now: clock.now });
    const hit = (cost = 1) => kv.run(tokenBucketRateLimit, ['tb'], rateLimitArgs(3, 3000, cost));
    for (const remaining of [2, 1, 0]) assert.equal((await hit()).remaining, remaining);
    assert.deepEqual(await hit(), { allowed: false, remaining: 0, resetMs: 3000, retryAfterMs: 1000 });
    clock.advance(999);
    assert.deepEqual(await hit(), { allowed: false, remaining: 0, resetMs: 2001, retryAfterMs: 1 });
    clock.advance(1);
    assert.deepEqual(await hit(), { allowed: true, remaining: 0, resetMs: 3000, retryAfterMs: 0 });
    clock.advance(2500); // two more tokens, half of the third
    assert.deepEqual(await hit(2), { allowed: true, remaining: 0, resetMs: 2500, retryAfterMs: 0 });
    clock.advance(2500);
    assert.equal(await kv.get('tb'), null, 'a full bucket leaves no key');
    assert.deepEqual(await hit(4), { allowed: false, remaining: 3, resetMs: 0, retryAfterMs: 0 });
    await kv.close();
  });

  it('wraps a failing local script in KAPOK_KV_COMMAND naming the script', async () => {
    const kv = await createMemoryKV();
    const broken: KVScript<never> = {
      name: 'test.broken',
      lua: 'return redis.error_reply("ERR broken")',
      local: () => {
        throw new TypeError('nope');
      },
    };
    await assert.rejects(kv.run(broken, [], []), (err) => {
      assert.ok(isKapokError(err, 'KAPOK_KV_COMMAND'), String(err));
      assert.match(err.message, /test\.broken.*nope/);
      return true;
    });
    await kv.close();
  });

  it('rejects bad options with KAPOK_CONFIG_INVALID naming the option', async () => {
    const cases: Array<[unknown, string]> = [
      [{ maxKeys: 0 }, 'maxKeys'],
      [{ maxKeys: -1 }, 'maxKeys'],
      [{ maxKeys: 1.5 }, 'maxKeys'],
      [{ maxKeys: '10' }, 'maxKeys'],
      [{ sweepIntervalMs: 0 }, 'sweepIntervalMs'],
      [{ now: 5 }, 'now'],
      [null, 'options'],
    ];
    for (const [opts, option] of cases) {
      await assert.rejects(createMemoryKV(opts as MemoryKVOptions), (err) => {
        assert.ok(isKapokError(err, 'KAPOK_CONFIG_INVALID'), String(err));
        assert.match(err.message, new RegExp(`option ${option} `));
        return true;
      });
    }
  });
});
