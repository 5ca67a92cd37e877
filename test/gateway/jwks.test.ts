import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { request } from 'undici';
import { isKapokError } from '../../src/core/errors.js';
import { JwtVerifier } from '../../src/gateway/auth/jwt.js';
import { gatewaySchema } from '../../src/gateway/config.js';
import { type FakeLlm, startFakeLlm } from '../helpers/fake-llm.js';
import { type Gw, startGateway } from './setup.js';

type PrivKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
interface Signer {
  kid: string;
  privateKey: PrivKey;
  jwk: JWK;
}

async function signer(kid: string): Promise<Signer> {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { extractable: true });
  return {
    kid,
    privateKey: privateKey as PrivKey,
    jwk: { ...(await exportJWK(publicKey)), kid, alg: 'EdDSA' },
  };
}

let serial = 0;
/** A fresh token each call (its own jti), so the verifier's token cache never answers for it. */
const token = (s: Signer, sub = 'svc-1') =>
  new SignJWT({ jti: `t${++serial}` })
    .setProtectedHeader({ alg: 'EdDSA', kid: s.kid })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(s.privateKey);

/**
 * The identity provider's JWKS endpoint, a FAKE (it lies outside Kapok): serves `keys`, counts
 * fetches; `mode` makes it answer 500, answer a non-key-set, or hold the request (timeouts).
 */
interface Jwks {
  url: string;
  keys: JWK[];
  fetches: number;
  mode: 'ok' | 'error' | 'garbage' | 'hang';
  close(): Promise<void>;
}
async function startJwks(): Promise<Jwks> {
  const j: Jwks = {
    url: '',
    keys: [],
    fetches: 0,
    mode: 'ok',
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server: Server = createServer((_req, res) => {
    j.fetches++;
    if (j.mode === 'hang') return;
    if (j.mode === 'error') return void res.writeHead(500).end('boom');
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(j.mode === 'garbage' ? { nope: true } : { keys: j.keys }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  j.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  return j;
}

const jwtConfig = (jwksUrl: string) => gatewaySchema.parse({ auth: { jwt: { jwksUrl } } }).auth.jwt;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Asserts the promise rejects with this catalogue code and a message matching `re`. */
const rejectsWith = (p: Promise<unknown>, code: string, re: RegExp) =>
  assert.rejects(p, (e: unknown) => {
    assert.ok(isKapokError(e), String(e));
    assert.equal(e.code, code);
    assert.match(e.message, re);
    return true;
  });

// What src/gateway/auth/jwt.ts promises for gateway.auth.jwt.jwksUrl (JWKS_TIMINGS): fetched on
// first use and cached; a new kid refetches, at most once per cooldown; the cache expires after
// cacheMaxAge; an unreachable endpoint is a clear 502, never a crash or a misleading 401.
describe('gateway JWT with a JWKS URL: caching, key rotation, refetch rate limit, endpoint down', () => {
  let A: Signer;
  let B: Signer;
  let C: Signer;
  let jwks: Jwks;
  before(async () => {
    [A, B, C] = await Promise.all([signer('A'), signer('B'), signer('C')]);
    jwks = await startJwks();
  });
  after(() => jwks.close());
  const reset = (keys: JWK[]) => {
    jwks.keys = keys;
    jwks.fetches = 0;
    jwks.mode = 'ok';
  };

  it('the set is fetched once and cached; a new kid refetches once the cooldown has passed, and is accepted', async () => {
    reset([A.jwk]);
    const cooldownMs = 300;
    const v = new JwtVerifier(jwtConfig(jwks.url), { jwks: { cooldownMs } });
    for (let i = 0; i < 3; i++) assert.equal((await v.verify(await token(A, `svc-${i}`))).sub, `svc-${i}`);
    assert.equal(jwks.fetches, 1, 'three tokens, one fetch');

    // The provider rotates: B is published. Within the cooldown a kid B token is refused unfetched ...
    jwks.keys = [A.jwk, B.jwk];
    await rejectsWith(v.verify(await token(B)), 'KAPOK_GATEWAY_AUTH_INVALID', /no configured key matches/);
    assert.equal(jwks.fetches, 1, 'no refetch within the cooldown');
    // ... after it, the unknown kid triggers one refetch and is accepted; A still verifies.
    await sleep(cooldownMs + 50);
    assert.equal((await v.verify(await token(B, 'svc-b'))).sub, 'svc-b');
    assert.equal(jwks.fetches, 2);
    assert.equal((await v.verify(await token(A))).sub, 'svc-1');
    assert.equal(jwks.fetches, 2);
  });

  it('an unknown kid is refused 401 after the refetch, and refetches at most once per cooldown', async () => {
    reset([A.jwk]);
    const cooldownMs = 300;
    const v = new JwtVerifier(jwtConfig(jwks.url), { jwks: { cooldownMs } });
    await v.verify(await token(A));
    await sleep(cooldownMs + 50);
    await rejectsWith(v.verify(await token(C)), 'KAPOK_GATEWAY_AUTH_INVALID', /no configured key matches/);
    assert.equal(jwks.fetches, 2, 'the unknown kid refetched once');
    for (let i = 0; i < 5; i++)
      await rejectsWith(v.verify(await token(C)), 'KAPOK_GATEWAY_AUTH_INVALID', /no configured key matches/);
    assert.equal(jwks.fetches, 2, 'five more unknown kids within the cooldown: no fetch');
  });

  it('after cacheMaxAge the set is fetched again: a key the provider withdrew stops verifying new tokens', async () => {
    reset([A.jwk, B.jwk]);
    const cacheMaxAgeMs = 300;
    const v = new JwtVerifier(jwtConfig(jwks.url), { jwks: { cooldownMs: 100, cacheMaxAgeMs } });
    await v.verify(await token(A));
    jwks.keys = [B.jwk]; // A withdrawn
    await v.verify(await token(A)); // still cached
    assert.equal(jwks.fetches, 1);
    await sleep(cacheMaxAgeMs + 50);
    await rejectsWith(v.verify(await token(A)), 'KAPOK_GATEWAY_AUTH_INVALID', /no configured key matches/);
    assert.equal(jwks.fetches, 2, 'refetched once after cacheMaxAge');
    assert.equal((await v.verify(await token(B, 'svc-b'))).sub, 'svc-b');
  });

  it('an endpoint that fails, answers garbage or hangs: 502 KAPOK_UPSTREAM_UNAVAILABLE saying so, not a 401', async () => {
    const cases: Array<[Jwks['mode'], RegExp]> = [
      ['error', /JWKS endpoint \(gateway\.auth\.jwt\.jwksUrl\) answered an error or no JSON; retry later/],
      ['garbage', /JWKS endpoint \(gateway\.auth\.jwt\.jwksUrl\) answered something that is not a key set/],
      ['hang', /JWKS endpoint \(gateway\.auth\.jwt\.jwksUrl\) timed out/],
    ];
    for (const [mode, re] of cases) {
      reset([A.jwk]);
      jwks.mode = mode;
      const v = new JwtVerifier(jwtConfig(jwks.url), { jwks: { timeoutMs: 300 } });
      await rejectsWith(v.verify(await token(A)), 'KAPOK_UPSTREAM_UNAVAILABLE', re);
      // The endpoint recovers: the same verifier works, nothing was left broken.
      jwks.mode = 'ok';
      assert.equal((await v.verify(await token(A, `svc-${mode}`))).sub, `svc-${mode}`);
    }
    // Nothing listening at all.
    const gone = await startJwks();
    await gone.close();
    const v = new JwtVerifier(jwtConfig(gone.url));
    await rejectsWith(
      v.verify(await token(A)),
      'KAPOK_UPSTREAM_UNAVAILABLE',
      /JWKS endpoint \(gateway\.auth\.jwt\.jwksUrl\) could not be reached/,
    );
  });

  describe('through the running gateway (default timings)', () => {
    let up: FakeLlm;
    let gw: Gw;
    let idp: Jwks;
    const chat = async (bearer: string) => {
      const res = await request(`${gw.base}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'qwen', messages: [{ role: 'user', content: 'hi' }] }),
      });
      const body = (await res.body.json()) as { error?: { code: string; message: string; type: string } };
      return { status: res.statusCode, body };
    };
    before(async () => {
      up = await startFakeLlm('up');
      idp = await startJwks();
      gw = await startGateway({
        providers: [{ name: 'up', type: 'openai', baseUrl: up.url }],
        models: [{ name: 'qwen', targets: [{ provider: 'up', model: 'q' }] }],
        auth: { jwt: { jwksUrl: idp.url } },
      });
    });
    after(async () => {
      await gw.stop();
      await Promise.all([up.close(), idp.close()]);
    });

    it('JWKS down: 502 KAPOK_UPSTREAM_UNAVAILABLE in OpenAI shape; once it is back, kid A is accepted and cached', async () => {
      idp.keys = [A.jwk];
      idp.mode = 'error';
      const down = await chat(await token(A));
      assert.equal(down.status, 502);
      assert.equal(down.body.error?.code, 'KAPOK_UPSTREAM_UNAVAILABLE');
      assert.equal(down.body.error?.type, 'server_error');
      assert.match(down.body.error?.message ?? '', /JWKS endpoint .* retry later/);
      // Still serving: the endpoint recovers and the same kind of token goes through.
      idp.mode = 'ok';
      idp.fetches = 0;
      for (let i = 0; i < 3; i++) assert.equal((await chat(await token(A, `svc-${i}`))).status, 200);
      assert.equal(idp.fetches, 1, 'cached after the first fetch');
      assert.equal(up.requests.length, 3);
    });

    it('an unknown kid is 401 KAPOK_GATEWAY_AUTH_INVALID, and within the 30 s cooldown it costs no fetch', async () => {
      const before = idp.fetches;
      for (let i = 0; i < 3; i++) {
        const r = await chat(await token(C));
        assert.equal(r.status, 401);
        assert.equal(r.body.error?.code, 'KAPOK_GATEWAY_AUTH_INVALID');
        assert.match(r.body.error?.message ?? '', /no configured key matches the token/);
      }
      assert.equal(idp.fetches, before);
    });
  });
});
