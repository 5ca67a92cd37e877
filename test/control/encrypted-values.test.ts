import assert from 'node:assert/strict';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { stringify } from 'yaml';
import { encryptConfigValue, parseConfigKeys } from '../../src/crypto/config-values.js';
import { kapokUp, type Running } from '../helpers/cli.js';
import { ALL_OFF } from '../helpers/config.js';
import { type FakeLlm, startFakeLlm } from '../helpers/fake-llm.js';
import { tmpDir } from '../helpers/tmp.js';

/**
 * A running `kapok up` on a file with sealed values (the upstream is a FAKE model server, outside
 * the system: it only records the Authorization header it was sent). The plaintexts reach the
 * upstream and the admin guard, and nowhere else: not the log (debug level), not /api, /readyz,
 * /metrics, /v1/models, not a rejected reload's error.
 */
const K1 = '0f1e2d3c4b5a69788796a5b4c3d2e1f0';
const keys = parseConfigKeys(`k1=${K1}`, 'test');
const KEY1 = 'sk-sealed-upstream-key-AAA111';
const KEY2 = 'sk-sealed-upstream-key-BBB222';
const ADMIN = 'sealed-admin-token-CCC333xyz';
const seal = (path: string, v: string) => encryptConfigValue(keys, 'k1', path, v);

describe('encrypted config values in a running Kapok', () => {
  const dir = tmpDir('kapok-enc-');
  const file = join(dir, 'kapok.yaml');
  let up: FakeLlm;
  let kapok: Running;
  const write = (apiKey: string) => {
    const doc = {
      ...ALL_OFF,
      dataDir: join(dir, 'data'),
      log: { level: 'debug' },
      control: { enabled: true, adminToken: seal('control.adminToken', ADMIN), fileDebounceMs: 20 },
      gateway: {
        enabled: true,
        auth: { apiKeys: false, anonymous: true },
        providers: [{ name: 'up', type: 'openai', baseUrl: up.url, apiKey }],
        models: [{ name: 'm', targets: [{ provider: 'up', model: 'up-m' }] }],
      },
    };
    writeFileSync(`${file}.new`, stringify(doc));
    renameSync(`${file}.new`, file);
  };
  const get = async (path: string, token?: string) => {
    const r = await request(`http://127.0.0.1:${kapok.port}${path}`, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
    return { status: r.statusCode, text: await r.body.text() };
  };
  const chat = async () => {
    const r = await request(`http://127.0.0.1:${kapok.port}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }),
    });
    await r.body.text();
    return r.statusCode;
  };
  const waitFor = async (what: string, ok: () => Promise<boolean>) => {
    const until = Date.now() + 15_000;
    while (!(await ok())) {
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  before(async () => {
    up = await startFakeLlm('up');
    write(seal('gateway.providers.0.apiKey', KEY1));
    kapok = await kapokUp({ KAPOK_CONFIG_KEYS: `k1=${K1}` }, ['--config', file]);
  });
  after(async () => {
    kapok?.child.kill('SIGTERM');
    await kapok?.exited;
    await up?.close();
  });

  it('the upstream gets the decrypted key and the admin guard takes the decrypted token', async () => {
    assert.equal(await chat(), 200);
    assert.equal(up.requests.at(-1)?.headers.authorization, `Bearer ${KEY1}`);
    assert.equal((await get('/api/control/status', ADMIN)).status, 200);
    assert.equal((await get('/api/control/status', 'wrong-token-0123456789')).status, 401);
  });

  it('a sealed value changed in the file applies live; a moved ciphertext is rejected by path', async () => {
    write(seal('gateway.providers.0.apiKey', KEY2));
    await waitFor('the new key upstream', async () => {
      await chat();
      return up.requests.at(-1)?.headers.authorization === `Bearer ${KEY2}`;
    });
    write(seal('gateway.providers.1.apiKey', 'sk-moved-DDD444'));
    let status: { lastError?: { code: string; message: string } | null } = {};
    await waitFor('the rejection', async () => {
      status = JSON.parse((await get('/api/control/status', ADMIN)).text);
      return status.lastError != null;
    });
    assert.equal(status.lastError?.code, 'KAPOK_CONFIG_DECRYPT');
    assert.match(status.lastError?.message ?? '', /gateway\.providers\.0\.apiKey/);
    assert.equal(await chat(), 200);
    assert.equal(up.requests.at(-1)?.headers.authorization, `Bearer ${KEY2}`, 'the last good key stays');
  });

  it('no plaintext in the log, /api, /readyz, /healthz, /metrics or /v1/models', async () => {
    const bodies = await Promise.all([
      get('/api/control/status', ADMIN),
      get('/readyz'),
      get('/healthz'),
      get('/metrics'),
      get('/v1/models'),
    ]);
    const seen = [...bodies.map((b) => b.text), JSON.stringify(kapok.lines), kapok.stderr()].join('\n');
    assert.ok(kapok.lines.length > 5, 'the log was captured');
    for (const secret of [KEY1, KEY2, ADMIN, 'sk-moved-DDD444'])
      assert.ok(!seen.includes(secret), `${secret} leaked`);
    assert.ok(seen.includes('KAPOK_CONFIG_DECRYPT'), 'the rejection is in the log/status');
  });
});
