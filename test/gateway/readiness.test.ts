import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { freePort } from '../helpers/ports.js';
import { type Gw, startGateway } from './setup.js';

interface Ready {
  status: string;
  components: Array<{ name: string; state: string; detail?: { unavailable?: string[] } }>;
}

// Readiness of the gateway: not ready exactly when no model can be served (every circuit open).
describe('gateway: /readyz follows the circuits', () => {
  let gw: Gw;
  let key: string;
  const COOLDOWN = 2500;

  before(async () => {
    const dead = await freePort();
    gw = await startGateway({
      providers: [
        { name: 'p', type: 'openai', baseUrl: `http://127.0.0.1:${dead}/v1`, connectTimeoutMs: 500 },
      ],
      models: [
        { name: 'one', targets: [{ provider: 'p', model: 'one' }] },
        { name: 'two', targets: [{ provider: 'p', model: 'two' }] },
      ],
      circuit: { failureThreshold: 1, cooldownMs: COOLDOWN },
      retry: { maxAttempts: 1 },
    });
    key = (await gw.createKey()).key;
  });
  after(() => gw.stop());

  const ready = async () => {
    const r = await request(`${gw.base}/readyz`);
    const body = (await r.body.json()) as Ready;
    return { status: r.statusCode, body, gateway: body.components.find((c) => c.name === 'gateway') };
  };
  const fail = async (model: string) => {
    const r = await request(`${gw.base}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
    });
    await r.body.dump();
    assert.ok(r.statusCode >= 500, `a refused upstream fails the request (got ${r.statusCode})`);
  };

  it('ready while any model can be served; 503 when every circuit is open; ready again at half-open', async () => {
    assert.equal((await ready()).status, 200, 'all circuits closed at start');

    await fail('one');
    const some = await ready();
    assert.equal(some.status, 200, 'model two can still be served');
    assert.equal(some.gateway?.state, 'ready');
    assert.deepEqual(some.gateway?.detail?.unavailable, ['one']);

    await fail('two');
    const none = await ready();
    assert.equal(none.status, 503, 'no model can be served');
    assert.equal(none.body.status, 'not_ready');
    assert.equal(none.gateway?.state, 'not_ready');
    assert.deepEqual(none.gateway?.detail?.unavailable?.sort(), ['one', 'two']);

    // After the cooldown each circuit lets one probe through: the instance is worth trying again.
    await new Promise((r) => setTimeout(r, COOLDOWN + 200));
    const probing = await ready();
    assert.equal(probing.status, 200);
    assert.deepEqual(probing.gateway?.detail?.unavailable, []);
  });
});
