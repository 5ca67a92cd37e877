import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import type OpenAI from 'openai';
import { request } from 'undici';
import { kapok } from '../helpers/cli.js';
import { type FakeLlm, startFakeLlm } from '../helpers/fake-llm.js';
import { ADMIN, type Gw, startGateway } from './setup.js';

type ApiError = InstanceType<typeof OpenAI.APIError>;
const msg = [{ role: 'user' as const, content: 'hi' }];
type PrivKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');

// Upstream: the fake model server of helpers/fake-llm.ts. Client: the openai SDK.
describe('gateway auth: API keys and JWT', () => {
  let up: FakeLlm;
  let gw: Gw;
  const keys: Record<string, { privateKey: PrivKey; pem: string }> = {};

  before(async () => {
    for (const alg of ['EdDSA', 'ES256', 'RS256'] as const) {
      const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
      keys[alg] = { privateKey: privateKey as PrivKey, pem: await exportSPKI(publicKey) };
    }
    up = await startFakeLlm('up');
    gw = await startGateway({
      providers: [{ name: 'up', type: 'openai', baseUrl: up.url }],
      models: [
        { name: 'qwen', targets: [{ provider: 'up', model: 'q' }] },
        { name: 'gemma', targets: [{ provider: 'up', model: 'g' }] },
      ],
      auth: {
        adminToken: ADMIN,
        keyCacheMs: 200,
        jwt: {
          publicKeys: Object.values(keys).map((k) => k.pem),
          issuer: 'https://idp.example',
          audience: 'kapok',
          clockToleranceSec: 0,
        },
      },
    });
  });
  after(async () => {
    await gw.stop();
    await up.close();
  });

  const jwt = (
    alg: 'EdDSA' | 'ES256' | 'RS256',
    claims: Record<string, unknown> = {},
    exp: string | number = '5m',
  ) =>
    new SignJWT({ ...claims })
      .setProtectedHeader({ alg })
      .setSubject('svc-42')
      .setIssuer('https://idp.example')
      .setAudience('kapok')
      .setIssuedAt()
      .setExpirationTime(exp)
      .sign((keys[alg] as { privateKey: PrivKey }).privateKey);

  const rejects401 = (token: string, re: RegExp) =>
    assert.rejects(
      gw.client(token).chat.completions.create({ model: 'qwen', messages: msg }),
      (e: ApiError) => {
        assert.equal(e.status, 401);
        assert.equal(e.code, 'KAPOK_GATEWAY_AUTH_INVALID');
        assert.match(e.message, re);
        return true;
      },
    );

  it('accepts EdDSA, ES256 and RS256 tokens from the configured keys', async () => {
    for (const alg of ['EdDSA', 'ES256', 'RS256'] as const) {
      const r = await gw.client(await jwt(alg)).chat.completions.create({ model: 'qwen', messages: msg });
      assert.equal(r.choices[0]?.message.content, 'hello from up', alg);
    }
  });

  it('rejects expired, wrong audience, wrong issuer, alg none, HMAC signed with the public key, tampered', async () => {
    await rejects401(await jwt('EdDSA', {}, Math.floor(Date.now() / 1000) - 10), /expired/);
    const wrongAud = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256' })
      .setSubject('s')
      .setIssuer('https://idp.example')
      .setAudience('someone-else')
      .setExpirationTime('5m')
      .sign((keys.ES256 as { privateKey: PrivKey }).privateKey);
    await rejects401(wrongAud, /aud/);
    const wrongIss = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256' })
      .setSubject('s')
      .setIssuer('https://evil.example')
      .setAudience('kapok')
      .setExpirationTime('5m')
      .sign((keys.ES256 as { privateKey: PrivKey }).privateKey);
    await rejects401(wrongIss, /iss/);
    const claims = {
      sub: 's',
      iss: 'https://idp.example',
      aud: 'kapok',
      exp: Math.floor(Date.now() / 1000) + 300,
    };
    await rejects401(`${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`, /algorithm|malformed/);
    // The classic key-confusion attack: HS256 with the RSA public key as the HMAC secret.
    const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
    const mac = createHmac('sha256', (keys.RS256 as { pem: string }).pem)
      .update(input)
      .digest('base64url');
    await rejects401(`${input}.${mac}`, /algorithm/);
    const good = await jwt('EdDSA');
    const [h, , s] = good.split('.');
    await rejects401(`${h}.${b64({ ...claims, sub: 'admin' })}.${s}`, /signature/);
  });

  it('a cached verification never outlives exp', async () => {
    const token = await jwt('EdDSA', {}, Math.floor(Date.now() / 1000) + 1);
    await gw.client(token).chat.completions.create({ model: 'qwen', messages: msg });
    await new Promise((r) => setTimeout(r, 1100 - (Date.now() % 1000) + 1000));
    await rejects401(token, /expired/);
  });

  it('a models claim limits what the token may call, and /v1/models shows only those', async () => {
    const token = await jwt('RS256', { models: ['gemma'] });
    const list = await gw.client(token).models.list();
    assert.deepEqual(
      list.data.map((m) => m.id),
      ['gemma'],
    );
    await assert.rejects(
      gw.client(token).chat.completions.create({ model: 'qwen', messages: msg }),
      (e: ApiError) => e.status === 403 && e.code === 'KAPOK_GATEWAY_MODEL_FORBIDDEN',
    );
  });

  it('refuses a models claim that is not an array of names, and a sub that is not a string', async () => {
    await rejects401(await jwt('ES256', { models: 'gemma' }), /claim models/);
    await rejects401(await jwt('ES256', { models: ['gemma', 7] }), /claim models/);
    await rejects401(await jwt('ES256', { models: null }), /claim models/);
    const withSub = (sub: unknown) =>
      new SignJWT({ sub } as Record<string, unknown>)
        .setProtectedHeader({ alg: 'EdDSA' })
        .setIssuer('https://idp.example')
        .setAudience('kapok')
        .setExpirationTime('5m')
        .sign((keys.EdDSA as { privateKey: PrivKey }).privateKey);
    await rejects401(await withSub({}), /claim sub/);
    await rejects401(await withSub(42), /claim sub/);
    await rejects401(await withSub(''), /claim sub/);
  });

  it('keys: --models restriction, revoke through the admin API takes effect at once', async () => {
    const { id, key } = await gw.createKey({ models: ['qwen'] });
    const c = gw.client(key);
    await c.chat.completions.create({ model: 'qwen', messages: msg });
    await assert.rejects(
      c.chat.completions.create({ model: 'gemma', messages: msg }),
      (e: ApiError) => e.status === 403,
    );
    const listed = await gw.admin('GET', '/keys');
    const mine = listed.body.keys.find((k: { id: string }) => k.id === id);
    assert.deepEqual(mine.models, ['qwen']);
    assert.ok(!JSON.stringify(listed.body).includes(key.slice(-43)), 'secrets are never listed');
    assert.equal((await gw.admin('DELETE', `/keys/${id}`)).status, 200);
    await assert.rejects(c.models.list(), (e: ApiError) => e.status === 401 && /revoked/.test(e.message));
    assert.equal((await gw.admin('DELETE', `/keys/${id}`)).status, 404);
    assert.ok(!gw.logs.text().includes(key), 'the key never appears in logs');
  });

  it('admin API: wrong or missing token is 401; validation errors are 400', async () => {
    for (const auth of [undefined, 'Bearer wrong-token-wrong-token', `Bearer ${ADMIN}x`, ADMIN]) {
      const res = await request(`${gw.base}/api/gateway/keys`, {
        headers: auth ? { authorization: auth } : {},
      });
      assert.equal(res.statusCode, 401, String(auth));
      assert.equal(
        ((await res.body.json()) as { error: { code: string } }).error.code,
        'KAPOK_HTTP_UNAUTHORIZED',
      );
    }
    for (const body of [
      {},
      { name: 'bad name' },
      { name: 'ok', rpm: -1 },
      { name: 'ok', models: ['nope'] },
    ]) {
      const r = await gw.admin('POST', '/keys', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.body.error.code, 'KAPOK_HTTP_BAD_REQUEST');
    }
  });

  it('kapok keys (CLI, another process) creates a key the running gateway accepts, and revokes it', async () => {
    const env = { KAPOK_DATA_DIR: gw.dataDir };
    const created = await kapok(['keys', 'create', '--name', 'cli-key', '--rpm', '5', '--json'], env);
    assert.equal(created.code, 0, created.stderr);
    const { id, key, rpm } = JSON.parse(created.stdout);
    assert.equal(rpm, 5);
    const r = await gw.client(key).chat.completions.create({ model: 'qwen', messages: msg }).withResponse();
    assert.equal(r.response.headers.get('x-ratelimit-limit-requests'), '5');
    const list = await kapok(['keys', 'list'], env);
    assert.match(list.stdout, new RegExp(`${id}\\s+cli-key\\s+5`));
    const revoked = await kapok(['keys', 'revoke', 'cli-key'], env);
    assert.equal(revoked.code, 0, revoked.stderr);
    await new Promise((res) => setTimeout(res, 250)); // gateway.auth.keyCacheMs is 200 here
    await assert.rejects(gw.client(key).models.list(), (e: ApiError) => e.status === 401);
    const again = await kapok(['keys', 'revoke', 'cli-key'], env);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /KAPOK_GATEWAY_KEY_NOT_FOUND/);
  });
});
