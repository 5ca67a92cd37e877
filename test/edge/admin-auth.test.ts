import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { upgradeStatus } from '../helpers/ws.js';
import { type Edge, startEdge } from './setup.js';

const TOKEN = 'edge-admin-token-0123456789';

describe('edge admin token', () => {
  let e: Edge;
  before(async () => {
    e = await startEdge({ adminToken: TOKEN });
  });
  after(() => e.stop());

  it('refuses /api/edge without the bearer token or with a wrong one (401), takes the right one', async () => {
    const none = await e.get('/api/edge/devices');
    assert.equal(none.status, 401);
    assert.equal(none.body.error.code, 'KAPOK_HTTP_UNAUTHORIZED');
    assert.match(none.body.error.message, /Bearer <edge\.adminToken>/);
    assert.ok(!JSON.stringify(none.body).includes(TOKEN), 'the token is never echoed');
    const wrong = await request(`${e.base}/api/edge/devices`, {
      headers: { authorization: `Bearer ${TOKEN}x` },
    });
    assert.equal(wrong.statusCode, 401);
    await wrong.body.dump();
    const ok = await request(`${e.base}/api/edge/devices`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(ok.statusCode, 200);
    await ok.body.dump();
  });

  it('refuses the /ws/telemetry upgrade without the token and accepts it with the token', async () => {
    const url = `${e.base.replace('http', 'ws')}/ws/telemetry?topic=${encodeURIComponent('telemetry/#')}`;
    assert.equal(await upgradeStatus(url), 401);
    assert.equal(await upgradeStatus(url, 'Bearer nope'), 401);
    assert.equal(await upgradeStatus(url, `Bearer ${TOKEN}`), 101);
  });

  it('leaves probes and metrics open', async () => {
    assert.equal((await e.get('/healthz')).status, 200);
  });
});

describe('edge under profile gov without an admin token', () => {
  it('closes /api/edge and /ws/telemetry (403 naming edge.adminToken)', async () => {
    const e = await startEdge({}, undefined, { profile: 'gov' });
    try {
      const r = await e.get('/api/edge/devices');
      assert.equal(r.status, 403);
      assert.equal(r.body.error.code, 'KAPOK_HTTP_ADMIN_DISABLED');
      assert.match(r.body.error.message, /profile gov until edge\.adminToken is set/);
      const url = `${e.base.replace('http', 'ws')}/ws/telemetry?topic=${encodeURIComponent('telemetry/#')}`;
      assert.equal(await upgradeStatus(url), 403);
    } finally {
      await e.stop();
    }
  });
});
