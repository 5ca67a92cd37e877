import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { configSchema } from '../../src/config.js';
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
  // Was a runtime 403; the config check now refuses a gov start whose admin API no token can open
  // (and anonymous MQTT clients). The guard's own gov rule is tested in test/core/admin-auth.test.ts.
  it('the configuration is refused naming edge.adminToken and edge.auth.anonymous', () => {
    const r = configSchema.safeParse({
      profile: 'gov',
      // Every capability is on by default: only this one here.
      ...Object.fromEntries(
        ['gateway', 'inference', 'edge', 'v2x', 'gm', 'control'].map((c) => [c, { enabled: false }]),
      ),
      edge: { enabled: true, auth: { anonymous: true } },
      // Profile gov requires the audit trail (docs/audit.md).
      audit: { enabled: true, kek: '00112233445566778899aabbccddeeff', adminToken: 'a'.repeat(16) },
    });
    assert.ok(!r.success);
    assert.deepEqual(r.error.issues.map((i) => i.path.join('.')).sort(), [
      'edge.adminToken',
      'edge.auth.anonymous',
    ]);
  });
});
