import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { configSchema } from '../../src/config.js';
import { upgradeStatus } from '../helpers/ws.js';
import { startV2x, type V2xApp } from './setup.js';

const TOKEN = 'v2x-admin-token-0123456789';
const ZONE = {
  type: 'Polygon',
  coordinates: [
    [
      [113, 23],
      [113.1, 23],
      [113.1, 23.1],
      [113, 23],
    ],
  ],
};

describe('v2x admin token', () => {
  let k: V2xApp;
  before(async () => {
    k = await startV2x({ adminToken: TOKEN });
  });
  after(() => k.stop());

  it('refuses every /api/v2x route without the bearer token, before reading the body', async () => {
    for (const [method, path, body] of [
      ['GET', '/api/v2x/vehicles'],
      ['PUT', '/api/v2x/zones/z1', ZONE],
      ['POST', '/api/v2x/messages', { messages: [] }],
    ] as const) {
      const r = await k.call(method, path, body);
      assert.equal(r.status, 401, `${method} ${path}`);
      assert.match(r.body.error.message, /Bearer <v2x\.adminToken>/);
    }
    assert.equal((await k.call('GET', '/api/v2x/zones')).status, 401);
  });

  it('takes the right token: a zone is stored and listed', async () => {
    const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
    const put = await request(`${k.base}/api/v2x/zones/z1`, {
      method: 'PUT',
      headers,
      body: JSON.stringify(ZONE),
    });
    assert.equal(put.statusCode, 201);
    await put.body.dump();
    const list = await request(`${k.base}/api/v2x/zones`, { headers });
    const body = (await list.body.json()) as { zones: Array<{ id: string }> };
    assert.deepEqual(
      body.zones.map((z) => z.id),
      ['z1'],
    );
  });

  it('guards the /ws/v2x upgrade', async () => {
    const url = `${k.base.replace('http', 'ws')}/ws/v2x`;
    assert.equal(await upgradeStatus(url), 401);
    assert.equal(await upgradeStatus(url, `Bearer ${TOKEN}`), 101);
  });
});

describe('v2x under profile gov without an admin token', () => {
  // Was a runtime 403; the config check now refuses a gov start whose admin API no token can open.
  it('the configuration is refused naming v2x.adminToken', () => {
    const r = configSchema.safeParse({
      profile: 'gov',
      // Every capability is on by default: only this one here.
      ...Object.fromEntries(
        ['gateway', 'inference', 'edge', 'v2x', 'gm', 'control'].map((c) => [c, { enabled: false }]),
      ),
      edge: { enabled: true, adminToken: 'e'.repeat(16) },
      v2x: { enabled: true },
      // Profile gov requires the audit trail (docs/audit.md).
      audit: { enabled: true, kek: '00112233445566778899aabbccddeeff', adminToken: 'a'.repeat(16) },
    });
    assert.ok(!r.success);
    assert.deepEqual(
      r.error.issues.map((i) => i.path.join('.')),
      ['v2x.adminToken'],
    );
  });
});
