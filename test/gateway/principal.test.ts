import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMemoryKV } from '../../src/adapters/memory/kv.js';
import { createSqliteStore } from '../../src/adapters/sqlite/store.js';
import { configSchema } from '../../src/config.js';
import { createLogger } from '../../src/core/log.js';
import { Authenticator } from '../../src/gateway/auth/index.js';
import { KeyStore } from '../../src/gateway/auth/key-store.js';
import { KeyService } from '../../src/gateway/auth/keys.js';
import { GATEWAY_MIGRATIONS } from '../../src/gateway/migrations.js';
import { QuotaService } from '../../src/gateway/quota/service.js';
import { tmpDir } from '../helpers/tmp.js';

const cfg = configSchema.parse({
  gateway: {
    providers: [{ name: 'a', type: 'openai', baseUrl: 'http://127.0.0.1:9/v1' }],
    models: [{ name: 'qwen', targets: [{ provider: 'a', model: 'x' }] }],
    limits: { default: { rpm: 100, tpm: 10_000 } },
  },
}).gateway;

async function setup(cacheMs: number) {
  const store = await createSqliteStore({ file: `${tmpDir('kapok-principal-')}/k.db` });
  await store.migrate(GATEWAY_MIGRATIONS);
  const keys = new KeyService({ store: new KeyStore(store), knownModels: new Set(['qwen']), cacheMs });
  return { keys, auth: new Authenticator(cfg, keys) };
}

describe('gateway principals of API keys', () => {
  it('requests with one cached key share one frozen principal; a revoked key gets none', async () => {
    const { keys, auth } = await setup(60_000);
    const { key, info } = await keys.create({ name: 'k1', rpm: 7, models: ['qwen'] });
    const p1 = await auth.authenticate(`Bearer ${key}`, '127.0.0.1');
    const p2 = await auth.authenticate(`Bearer ${key}`, '127.0.0.2');
    assert.equal(p1, p2);
    assert.ok(Object.isFrozen(p1));
    assert.deepEqual(
      { ...p1, models: [...(p1.models ?? [])] },
      {
        kind: 'key',
        subject: `key:${info.id}`,
        models: ['qwen'],
        rpm: 7,
        tpm: 10_000,
      },
    );
    // A wrong secret with the same id is still refused: the principal is found only after the key matched.
    const forged = key.slice(0, -4) + (key.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    await assert.rejects(auth.authenticate(`Bearer ${forged}`, '127.0.0.1'), /unknown or revoked/);
    await keys.revoke(info.id);
    await assert.rejects(auth.authenticate(`Bearer ${key}`, '127.0.0.1'), /unknown or revoked/);
  });

  it('without a key cache each request gets its own principal, equal to the last', async () => {
    const { keys, auth } = await setup(0);
    const { key } = await keys.create({ name: 'k2' });
    const p1 = await auth.authenticate(`Bearer ${key}`, '127.0.0.1');
    const p2 = await auth.authenticate(`Bearer ${key}`, '127.0.0.1');
    assert.notEqual(p1, p2);
    assert.deepEqual(p1, p2);
  });

  it('quotas count per subject whether or not principals are shared', async () => {
    const kv = await createMemoryKV();
    const quota = new QuotaService(kv, { failOpen: false, logger: createLogger({ level: 'silent' }) });
    const { keys, auth } = await setup(60_000);
    const a = await keys.create({ name: 'qa', rpm: 2 });
    const b = await keys.create({ name: 'qb', rpm: 2 });
    const pa = await auth.authenticate(`Bearer ${a.key}`, '127.0.0.1');
    const pb = await auth.authenticate(`Bearer ${b.key}`, '127.0.0.1');
    assert.equal((await quota.admit(pa, 10)).result?.requestsRemaining, 1);
    assert.equal((await quota.admit(pa, 10)).result?.requestsRemaining, 0);
    await assert.rejects(quota.admit(pa, 10), /rate limit of 2 requests per minute/);
    assert.equal((await quota.admit(pb, 10)).result?.requestsRemaining, 1);
    // Settling charges the same tokens key that admit reserved on.
    const adm = await quota.admit(pb, 10);
    await quota.settle(pb, adm, 110);
    assert.equal(await kv.get(`gw:t:${pb.subject}`), '120');
    await kv.close();
  });
});
