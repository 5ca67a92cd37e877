import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FAKE_USAGE, type FakeLlm, startFakeLlm } from '../helpers/fake-llm.js';
import { pgAdmin, pgSchema, postgresGate } from '../helpers/probes.js';
import { type Gw, startGateway } from './setup.js';

const { schema, url } = pgSchema('kapok_gw');
const admin = pgAdmin;
const { skip } = await postgresGate();

// Keys and usage on a real PostgreSQL (own schema per run). Upstream: helpers/fake-llm.ts.
describe('gateway on the PostgreSQL store (needs PostgreSQL)', { skip }, () => {
  let up: FakeLlm;
  let gw: Gw;
  before(async () => {
    await admin(`CREATE SCHEMA ${schema}`);
    up = await startFakeLlm('up');
    gw = await startGateway(
      {
        providers: [{ name: 'up', type: 'openai', baseUrl: up.url }],
        models: [{ name: 'qwen', targets: [{ provider: 'up', model: 'q' }] }],
        usage: { flushIntervalMs: 50 },
      },
      { store: { driver: 'postgres', url } },
    );
  });
  after(async () => {
    await gw?.stop();
    await up?.close();
    await admin(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  });

  it('creates, uses and revokes keys; usage totals come back as numbers', async () => {
    const { id, key } = await gw.createKey({ rpm: 100, models: ['qwen'] });
    const c = gw.client(key);
    for (let i = 0; i < 3; i++)
      await c.chat.completions.create({ model: 'qwen', messages: [{ role: 'user', content: 'x' }] });
    const usage = await gw.admin('GET', `/usage?key=${id}&groupBy=target`);
    assert.deepEqual(usage.body.rows, [
      {
        group: 'up/q',
        requests: 3,
        errors: 0,
        prompt_tokens: 3 * FAKE_USAGE.prompt_tokens,
        completion_tokens: 3 * FAKE_USAGE.completion_tokens,
        total_tokens: 3 * (FAKE_USAGE.prompt_tokens + FAKE_USAGE.completion_tokens),
      },
    ]);
    const byStatus = await gw.admin('GET', `/usage?key=${id}&groupBy=status`);
    assert.equal(byStatus.body.rows[0].group, 200);
    assert.equal((await gw.admin('DELETE', `/keys/${id}`)).status, 200);
    await assert.rejects(c.models.list(), (e: { status?: number }) => e.status === 401);
    // A new key may take the revoked one's name.
    const again = await gw.admin('POST', '/keys', {
      name: (await gw.admin('GET', '/keys?all=true')).body.keys[0].name,
    });
    assert.equal(again.status, 201);
  });
});
