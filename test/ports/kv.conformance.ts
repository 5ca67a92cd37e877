/**
 * The one conformance suite of the KV port, run against every adapter. `make` returns a new KV each
 * call; keys are unique per test, so adapters may share a backend (Redis runs use a random
 * keyPrefix and delete their keys in `cleanup`). TTL checks use short TTLs with generous margins:
 * "present right after", "gone after 2x+ the TTL", never tight timing.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, describe, it } from 'node:test';
import { type ErrorCode, isKapokError, type KapokError } from '../../src/core/errors.js';
import type { KV, KVScript } from '../../src/ports/kv.js';
import {
  fixedWindowRateLimit,
  type RateLimitResult,
  rateLimitArgs,
  tokenBucketRateLimit,
} from '../ports/kv-scripts.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function rejectsWith(
  p: Promise<unknown>,
  code: ErrorCode,
  check?: (err: KapokError) => void,
): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(
      isKapokError(err, code),
      `expected ${code}, got ${err instanceof Error ? err.stack : String(err)}`,
    );
    check?.(err);
    return true;
  });
}

/** A user script: returns the old value and sets a new one, touching only the key it was given. */
const getAndSet: KVScript<string | null> = {
  name: 'test.getAndSet',
  lua: `local old = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1])
return old`,
  local: (kv, keys, args) => {
    const old = kv.get(keys[0] as string);
    kv.set(keys[0] as string, args[0] as string);
    return old;
  },
  parse: (raw) => (raw === null ? null : String(raw)),
};

export function kvConformance(name: string, make: () => Promise<KV>, cleanup?: () => Promise<void>): void {
  describe(`KV conformance: ${name}`, () => {
    const run = randomBytes(3).toString('hex');
    let seq = 0;
    const key = (base: string) => `${base}:${run}:${++seq}`;
    const opened: KV[] = [];
    const open = async () => {
      const kv = await make();
      opened.push(kv);
      return kv;
    };
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((kv) => kv.close()));
    });
    after(async () => {
      await cleanup?.();
    });

    it('reports its kind and answers ping', async () => {
      const kv = await open();
      assert.ok(kv.kind === 'memory' || kv.kind === 'redis');
      await kv.ping();
    });

    it('gets, sets, overwrites and deletes', async () => {
      const kv = await open();
      const k = key('basic');
      assert.equal(await kv.get(k), null);
      assert.equal(await kv.set(k, 'one'), true);
      assert.equal(await kv.get(k), 'one');
      assert.equal(await kv.set(k, 'two'), true);
      assert.equal(await kv.get(k), 'two');
      assert.equal(await kv.set(k, ''), true);
      assert.equal(await kv.get(k), '');
      assert.equal(await kv.del(k), true);
      assert.equal(await kv.del(k), false);
      assert.equal(await kv.get(k), null);
    });

    it('writes with ifAbsent only when the key is missing', async () => {
      const kv = await open();
      const k = key('nx');
      assert.equal(await kv.set(k, 'first', { ifAbsent: true }), true);
      assert.equal(await kv.set(k, 'second', { ifAbsent: true }), false);
      assert.equal(await kv.get(k), 'first');
      await kv.del(k);
      // 500 ms, not less: "present right after" must hold on a loaded machine too.
      assert.equal(await kv.set(k, 'third', { ifAbsent: true, ttlMs: 500 }), true);
      assert.equal(await kv.set(k, 'fourth', { ifAbsent: true }), false);
      await sleep(1200);
      assert.equal(await kv.set(k, 'fifth', { ifAbsent: true }), true, 'an expired key counts as absent');
      assert.equal(await kv.get(k), 'fifth');
    });

    it('expires keys after their TTL, for every operation', async () => {
      const kv = await open();
      const [a, b] = [key('ttl'), key('ttl')];
      await kv.set(a, 'v', { ttlMs: 500 });
      await kv.incr(b, 1, { ttlMs: 500 });
      assert.equal(await kv.get(a), 'v');
      assert.equal(await kv.get(b), '1');
      await sleep(1200);
      assert.equal(await kv.get(a), null);
      assert.equal(await kv.pttl(a), -2);
      assert.equal(await kv.del(b), false);
      assert.equal(await kv.incr(b), 1, 'incr after expiry starts again from 0');
    });

    it('reports pttl: -2 missing, -1 without TTL, else the ms left; set without ttl clears it', async () => {
      const kv = await open();
      const k = key('pttl');
      assert.equal(await kv.pttl(k), -2);
      await kv.set(k, 'v');
      assert.equal(await kv.pttl(k), -1);
      await kv.set(k, 'v', { ttlMs: 10_000 });
      const left = await kv.pttl(k);
      assert.ok(left > 5_000 && left <= 10_000, `pttl ${left}`);
      await kv.set(k, 'w');
      assert.equal(await kv.pttl(k), -1, 'a plain set removes the TTL, as Redis SET does');
    });

    it('rejects TTLs that are not whole positive milliseconds with KAPOK_KV_COMMAND', async () => {
      const kv = await open();
      const k = key('badttl');
      for (const ttlMs of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
        await rejectsWith(kv.set(k, 'v', { ttlMs }), 'KAPOK_KV_COMMAND');
        await rejectsWith(kv.incr(k, 1, { ttlMs }), 'KAPOK_KV_COMMAND');
      }
      await rejectsWith(kv.incr(k, 1.5), 'KAPOK_KV_COMMAND');
      assert.equal(await kv.get(k), null, 'nothing was written');
    });

    it('increments: creates at 0, adds any whole number, keeps a TTL it did not create', async () => {
      const kv = await open();
      const k = key('incr');
      assert.equal(await kv.incr(k), 1);
      assert.equal(await kv.incr(k, 41), 42);
      assert.equal(await kv.incr(k, -50), -8);
      assert.equal(await kv.get(k), '-8');
      await kv.set(k, '10', { ttlMs: 10_000 });
      assert.equal(await kv.incr(k), 11);
      const left = await kv.pttl(k);
      assert.ok(left > 5_000, `incr without ttl keeps the key's TTL (pttl ${left})`);
    });

    it('gives incr a TTL only when it creates the key', async () => {
      const kv = await open();
      const k = key('incrttl');
      assert.equal(await kv.incr(k, 1, { ttlMs: 1000 }), 1);
      const first = await kv.pttl(k);
      assert.ok(first > 0 && first <= 1000, `pttl ${first}`);
      await sleep(100);
      assert.equal(await kv.incr(k, 1, { ttlMs: 1000 }), 2);
      const second = await kv.pttl(k);
      // Kept: at most 1000 - 100 left. Reset would show ~1000.
      assert.ok(second > 0 && second < 950, `a later incr must not reset the TTL (pttl ${second})`);
      const plain = key('incrttl');
      await kv.set(plain, '5');
      await kv.incr(plain, 1, { ttlMs: 1000 });
      assert.equal(await kv.pttl(plain), -1, 'an existing key without TTL does not get one');
    });

    it('refuses incr on a value that is not an integer with KAPOK_KV_TYPE, changing nothing', async () => {
      const kv = await open();
      for (const bad of ['abc', '1.5', ' 7', '', '007', '+3', '99999999999999999999999']) {
        const k = key('type');
        await kv.set(k, bad);
        await rejectsWith(kv.incr(k), 'KAPOK_KV_TYPE');
        await rejectsWith(kv.incr(k, 1, { ttlMs: 1000 }), 'KAPOK_KV_TYPE');
        assert.equal(await kv.get(k), bad);
      }
    });

    it('counts 100 concurrent increments exactly', async () => {
      const kv = await open();
      const k = key('concurrent');
      const results = await Promise.all(Array.from({ length: 100 }, () => kv.incr(k, 1, { ttlMs: 60_000 })));
      assert.deepEqual(
        [...results].sort((a, b) => a - b),
        Array.from({ length: 100 }, (_, i) => i + 1),
      );
      assert.equal(await kv.get(k), '100');
    });

    it('stores unicode, control characters, long values and long keys verbatim', async () => {
      const kv = await open();
      const values = [
        'héllo 世界 🌏 עברית \u202e',
        '\u0000\u0001\u0002\u007f\u0080\u00ff',
        'line\nbreak\r\ttab "quotes" \'single\' \\back',
        'x'.repeat(256 * 1024),
        '{"json":[1,2,3]}',
      ];
      for (const v of values) {
        const k = key('odd');
        await kv.set(k, v);
        assert.ok((await kv.get(k)) === v, `round trip of a ${v.length}-char value`);
      }
      const longKey = `${key('long')}:${'k'.repeat(10_000)}`;
      const oddKey = `${key('odd key')} with spaces * ? [x] \n 世界 🌏`;
      for (const k of [longKey, oddKey]) {
        await kv.set(k, 'v');
        assert.equal(await kv.get(k), 'v');
        assert.equal(await kv.del(k), true);
      }
    });

    it('runs a user script atomically on the keys it is given', async () => {
      const kv = await open();
      const k = key('script');
      assert.equal(await kv.run(getAndSet, [k], ['one']), null);
      assert.equal(await kv.run(getAndSet, [k], ['two']), 'one');
      assert.equal(await kv.get(k), 'two', 'the script key is the same key the KV methods use');
    });

    describe('fixedWindowRateLimit', () => {
      it('allows up to the limit in a window, then denies without consuming', async () => {
        const kv = await open();
        const k = key('fw');
        const seq: Array<[boolean, number]> = [];
        let last: RateLimitResult | undefined;
        for (let i = 0; i < 5; i++) {
          last = await kv.run(fixedWindowRateLimit, [k], rateLimitArgs(3, 60_000));
          seq.push([last.allowed, last.remaining]);
          assert.ok(last.resetMs > 0 && last.resetMs <= 60_000, `resetMs ${last.resetMs}`);
          assert.equal(last.retryAfterMs, last.allowed ? 0 : last.resetMs);
        }
        assert.deepEqual(seq, [
          [true, 2],
          [true, 1],
          [true, 0],
          [false, 0],
          [false, 0],
        ]);
        assert.equal(await kv.get(k), '3', 'denied calls consume nothing');
      });

      it('weighs calls by cost', async () => {
        const kv = await open();
        const k = key('fwcost');
        const seq = [];
        for (const cost of [2, 4, 3, 0, 1]) {
          const r = await kv.run(fixedWindowRateLimit, [k], rateLimitArgs(5, 60_000, cost));
          seq.push([r.allowed, r.remaining]);
        }
        assert.deepEqual(seq, [
          [true, 3],
          [false, 3],
          [true, 0],
          [true, 0],
          [false, 0],
        ]);
      });

      it('starts a new window once the old one has passed', async () => {
        const kv = await open();
        const k = key('fwreset');
        const first = await kv.run(fixedWindowRateLimit, [k], rateLimitArgs(1, 100));
        assert.deepEqual([first.allowed, first.remaining], [true, 0]);
        await sleep(300);
        const later = await kv.run(fixedWindowRateLimit, [k], rateLimitArgs(1, 100));
        assert.deepEqual([later.allowed, later.remaining], [true, 0]);
      });
    });

    describe('tokenBucketRateLimit', () => {
      it('allows a burst of limit, then denies with a retry time, without consuming', async () => {
        const kv = await open();
        const k = key('tb');
        const seq: Array<[boolean, number]> = [];
        for (let i = 0; i < 5; i++) {
          // 3 tokens per minute: one token every 20 s, so no refill happens during the test.
          const r = await kv.run(tokenBucketRateLimit, [k], rateLimitArgs(3, 60_000));
          seq.push([r.allowed, r.remaining]);
          assert.ok(r.resetMs > 0 && r.resetMs <= 60_000, `resetMs ${r.resetMs}`);
          if (r.allowed) assert.equal(r.retryAfterMs, 0);
          else assert.ok(r.retryAfterMs > 0 && r.retryAfterMs <= 20_000, `retryAfterMs ${r.retryAfterMs}`);
        }
        assert.deepEqual(seq, [
          [true, 2],
          [true, 1],
          [true, 0],
          [false, 0],
          [false, 0],
        ]);
      });

      it('weighs calls by cost', async () => {
        const kv = await open();
        const k = key('tbcost');
        const seq = [];
        for (const cost of [2, 4, 3, 0, 1, 6]) {
          const r = await kv.run(tokenBucketRateLimit, [k], rateLimitArgs(5, 60_000, cost));
          seq.push([r.allowed, r.remaining]);
        }
        assert.deepEqual(seq, [
          [true, 3],
          [false, 3],
          [true, 0],
          [true, 0],
          [false, 0],
          [false, 0],
        ]);
      });

      it('refills over time and leaves no key behind once full', async () => {
        const kv = await open();
        const k = key('tbrefill');
        for (let i = 0; i < 2; i++) await kv.run(tokenBucketRateLimit, [k], rateLimitArgs(2, 100));
        await sleep(300);
        assert.equal(await kv.get(k), null, 'a full bucket expires');
        const r = await kv.run(tokenBucketRateLimit, [k], rateLimitArgs(2, 100));
        assert.deepEqual([r.allowed, r.remaining], [true, 1]);
      });
    });

    it('rate-limit scripts refuse bad arguments (KAPOK_KV_COMMAND) and foreign values (KAPOK_KV_TYPE)', async () => {
      const kv = await open();
      for (const script of [fixedWindowRateLimit, tokenBucketRateLimit]) {
        const k = key('rlbad');
        for (const args of [
          ['x', '1000', '1'],
          ['3', '0', '1'],
          ['3', '1000', '-1'],
          ['3', '1000'],
          ['3', '1e3', '1'],
          ['3', '1000', '1.5'],
        ]) {
          await rejectsWith(kv.run(script, [k], args), 'KAPOK_KV_COMMAND');
        }
        await rejectsWith(kv.run(script, [], rateLimitArgs(3, 1000)), 'KAPOK_KV_COMMAND');
        await kv.set(k, 'not a counter');
        await rejectsWith(kv.run(script, [k], rateLimitArgs(3, 1000)), 'KAPOK_KV_TYPE');
        assert.equal(await kv.get(k), 'not a counter');
      }
    });

    it('rejects every call after close with KAPOK_KV_CLOSED; close is idempotent', async () => {
      const kv = await open();
      const k = key('closed');
      await kv.set(k, 'v');
      await kv.close();
      await kv.close();
      await rejectsWith(kv.get(k), 'KAPOK_KV_CLOSED');
      await rejectsWith(kv.set(k, 'v'), 'KAPOK_KV_CLOSED');
      await rejectsWith(kv.del(k), 'KAPOK_KV_CLOSED');
      await rejectsWith(kv.incr(k), 'KAPOK_KV_CLOSED');
      await rejectsWith(kv.pttl(k), 'KAPOK_KV_CLOSED');
      await rejectsWith(kv.run(getAndSet, [k], ['x']), 'KAPOK_KV_CLOSED');
      await rejectsWith(kv.ping(), 'KAPOK_KV_CLOSED');
    });
  });
}
