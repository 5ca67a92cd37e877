import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { createMemoryKV } from '../../src/adapters/memory/kv.js';
import { createRedisKV } from '../../src/adapters/redis/kv.js';
import { admitScript, settleScript } from '../../src/gateway/quota/scripts.js';
import type { KV } from '../../src/ports/kv.js';
import { REDIS_URL, redisGate } from '../helpers/probes.js';

const { skip } = await redisGate();

/** One sequence of admits and settles; answers without the time-dependent TTLs. */
async function sequence(kv: KV, id: string) {
  const k = [`r:${id}`, `t:${id}`];
  const out: unknown[] = [];
  const admit = async (rpm: number, tpm: number, cost: number) => {
    const r = await kv.run(admitScript, k, [String(rpm), String(tpm), '60000', String(cost)]);
    assert.ok(r.requestsResetMs > 0 && r.requestsResetMs <= 60_000);
    out.push([r.allowed, r.reason, r.requestsRemaining, r.tokensRemaining]);
  };
  const settle = async (delta: number) =>
    out.push(await kv.run(settleScript, [k[1] as string], [String(delta), '60000']));
  await admit(3, 100, 40);
  await admit(3, 100, 40);
  await admit(3, 100, 40); // tokens
  await settle(-30);
  await admit(3, 100, 40);
  await admit(3, 100, 1); // requests
  await admit(0, 100, 101); // too large
  await admit(0, 0, 5); // unlimited
  await settle(-1000); // floors at 0
  await admit(0, 100, 100);
  return out;
}

// The same script has a Lua half (Redis) and a local half (memory KV): both must answer alike.
describe('gateway quota scripts: memory and Redis agree (needs Redis)', { skip }, () => {
  const redis = createRedisKV({ url: REDIS_URL, keyPrefix: `kapok-test-${randomBytes(4).toString('hex')}:` });
  const memory = createMemoryKV({ maxKeys: 1000 });
  after(async () => {
    await (await redis).close();
    await (await memory).close();
  });

  it('gives identical answers for one sequence', async () => {
    const m = await sequence(await memory, 'a');
    const r = await sequence(await redis, 'a');
    assert.deepEqual(r, m);
    assert.deepEqual(m.slice(0, 3), [
      [true, 'ok', 2, 60],
      [true, 'ok', 1, 20],
      [false, 'tokens', 1, 20],
    ]);
  });

  it('refuses malformed arguments on both', async () => {
    for (const kv of [await memory, await redis]) {
      await assert.rejects(kv.run(admitScript, ['a', 'b'], ['x', '1', '1', '1']), /gatewayAdmit/);
      await assert.rejects(kv.run(settleScript, ['a'], ['1']), /gatewaySettle/);
    }
  });
});
