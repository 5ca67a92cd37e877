import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { type FakeLlm, startFakeLlm } from '../helpers/fake-llm.js';
import { freePort } from '../helpers/ports.js';
import { type Gw, startGateway } from './setup.js';

const msg = [{ role: 'user', content: 'hi' }];
/** Kapok's key for upstream a: it must reach a and nothing else (no error body, no log line). */
const SECRET = 'sk-upstream-a-0123456789-SECRET';

interface ErrorBody {
  error: { message: string; type: string; code: string; param: string | null };
}

// The gateway's failure paths as a client sees them: status, OpenAI-shaped body, stable code.
// Upstreams are the fake model servers of helpers/fake-llm.ts (no model behind them: fixed text,
// error bodies on demand, `hang` for timeouts); `dead` is a port nothing listens on.
describe('gateway failure paths: timeouts, refused credentials, failed upstreams, retries, reserve', () => {
  let a: FakeLlm;
  let b: FakeLlm;
  let gw: Gw;
  let key: string;
  const RESERVE = 100;

  before(async () => {
    [a, b] = await Promise.all([startFakeLlm('a'), startFakeLlm('b')]);
    const dead = await freePort();
    gw = await startGateway({
      providers: [
        { name: 'a', type: 'openai', baseUrl: a.url, apiKey: SECRET, timeoutMs: 300 },
        { name: 'b', type: 'openai', baseUrl: b.url, timeoutMs: 300 },
        { name: 'dead', type: 'openai', baseUrl: `http://127.0.0.1:${dead}/v1`, connectTimeoutMs: 500 },
      ],
      models: [
        // Each test has its own models: circuits are per target.
        ...['slow', 'sslow', 'stall', 'sstall', 'allfail', 'sallfail', 'rej', 'srej'].map((name) => ({
          name,
          targets: [{ provider: 'a', model: name }],
          fallbacks: [{ provider: 'b', model: name }],
        })),
        {
          name: 'refused',
          targets: [{ provider: 'a', model: 'r' }],
          fallbacks: [{ provider: 'dead', model: 'x' }],
        },
        { name: 'creds', targets: [{ provider: 'a', model: 'creds' }] },
        { name: 'screds', targets: [{ provider: 'a', model: 'screds' }] },
        // Four targets on one upstream, a fallback elsewhere: retry.maxAttempts (3) cuts the plan.
        ...['four', 'four429', 'four400'].map((name) => ({
          name,
          targets: [1, 2, 3, 4].map((i) => ({ provider: 'a', model: `${name}-${i}` })),
          fallbacks: [{ provider: 'b', model: name }],
        })),
        {
          name: 'chain',
          targets: [{ provider: 'a', model: 'chain' }],
          fallbacks: ['x', 'y', 'z'].map((m) => ({ provider: 'b', model: m })),
        },
        { name: 'plain', targets: [{ provider: 'b', model: 'plain' }] },
      ],
      retry: { maxAttempts: 3 },
      // Failures must not open circuits between cases.
      circuit: { failureThreshold: 1000, cooldownMs: 1000 },
      limits: { defaultCompletionReserve: RESERVE },
      // No admin token: the admin API answers loopback clients only (createKey comes from loopback).
      auth: { adminToken: null },
    });
    key = (await gw.createKey()).key;
  });
  after(async () => {
    await gw.stop();
    await Promise.all([a.close(), b.close()]);
  });
  const reset = () => {
    for (const f of [a, b]) {
      f.mode = 'ok';
      f.status = 500;
      f.errorMessage = null;
      f.errorCode = 'fake';
      f.requests.length = 0;
    }
  };
  const post = async (body: Record<string, unknown>, headers: Record<string, string> = {}, k = key) => {
    const res = await request(`${gw.base}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${k}`, 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
    const text = await res.body.text();
    return { status: res.statusCode, headers: res.headers, text, body: JSON.parse(text) as ErrorBody };
  };

  it('every target timing out: 504 KAPOK_GATEWAY_UPSTREAM_TIMEOUT, unary and stream alike', async () => {
    reset();
    a.mode = 'hang';
    b.mode = 'hang';
    for (const [model, stream] of [
      ['slow', false],
      ['sslow', true],
    ] as const) {
      const r = await post({ model, messages: msg, stream });
      assert.equal(r.status, 504, r.text);
      assert.match(String(r.headers['content-type']), /^application\/json/, 'an error, not an event stream');
      assert.equal(r.body.error.code, 'KAPOK_GATEWAY_UPSTREAM_TIMEOUT');
      assert.equal(r.body.error.type, 'server_error');
      // The last attempt (the fallback) is the one named.
      assert.equal(r.body.error.message, `upstream b/${model} did not answer within 300 ms`);
    }
    assert.equal(a.requests.length, 2, 'each request tried a, then b');
    assert.equal(b.requests.length, 2);
  });

  it('headers then silence past timeoutMs, before any byte reached the client: 504 as well, unary and stream', async () => {
    reset();
    a.mode = 'stall';
    b.mode = 'stall';
    for (const [model, stream] of [
      ['stall', false],
      ['sstall', true],
    ] as const) {
      const r = await post({ model, messages: msg, stream });
      assert.equal(r.status, 504, `${model}: ${r.text}`);
      assert.equal(r.body.error.code, 'KAPOK_GATEWAY_UPSTREAM_TIMEOUT');
      assert.match(r.body.error.message, new RegExp(`^upstream b/${model} `));
    }
    assert.equal(a.requests.length + b.requests.length, 4, 'a, then b, for each');
  });

  it('upstream refusing Kapok’s credentials (401, 403): 502 KAPOK_GATEWAY_UPSTREAM_FAILED, the key never shown', async () => {
    for (const status of [401, 403]) {
      for (const [model, stream] of [
        ['creds', false],
        ['screds', true],
      ] as const) {
        reset();
        a.mode = 'status';
        a.status = status;
        // Some providers echo the key they were given; that text must not reach the client.
        a.errorMessage = `Incorrect API key provided: ${SECRET}`;
        const r = await post({ model, messages: msg, stream });
        assert.equal(r.status, 502, `${status} ${model}: ${r.text}`);
        assert.equal(r.body.error.code, 'KAPOK_GATEWAY_UPSTREAM_FAILED');
        assert.equal(r.body.error.type, 'server_error');
        assert.match(r.body.error.message, new RegExp(`refused Kapok's credentials \\(${status}\\)`));
        assert.match(r.body.error.message, /apiKeyEnv/, 'says what to check');
        assert.ok(!r.text.includes(SECRET) && !r.text.includes('Incorrect API key'), r.text);
        // The key was sent (so the test would see a leak of it) ...
        assert.equal(a.requests[0]?.headers.authorization, `Bearer ${SECRET}`);
      }
    }
    // ... and appears in no log line either.
    assert.ok(!gw.logs.text().includes(SECRET), 'key not logged');
  });

  it('an upstream 4xx is the request’s fault: its status and message are passed on as UPSTREAM_REJECTED, not retried', async () => {
    for (const [model, stream] of [
      ['rej', false],
      ['srej', true],
    ] as const) {
      reset();
      a.mode = 'status';
      a.status = 400;
      a.errorMessage = 'This model’s maximum context length is 8192 tokens';
      // With the upstream's own code, that code is passed on (OpenAI clients switch on it) ...
      a.errorCode = 'context_length_exceeded';
      let r = await post({ model, messages: msg, stream });
      assert.equal(r.status, 400, r.text);
      assert.deepEqual(r.body.error, {
        message: 'This model’s maximum context length is 8192 tokens',
        type: 'fake_error',
        code: 'context_length_exceeded',
        param: null,
      });
      assert.equal(r.headers['x-kapok-target'], `a/${model}`);
      // ... without one, the catalogue code stands; other 4xx statuses keep their status.
      a.errorCode = null;
      a.status = 422;
      r = await post({ model, messages: msg, stream });
      assert.equal(r.status, 422, r.text);
      assert.equal(r.body.error.code, 'KAPOK_GATEWAY_UPSTREAM_REJECTED');
      assert.equal(b.requests.length, 0, 'the fallback is not tried: the request is at fault');
      assert.equal(a.requests.length, 2);
    }
  });

  it('every target failing (5xx, connection refused): 502 KAPOK_GATEWAY_UPSTREAM_FAILED naming the last', async () => {
    reset();
    a.mode = 'status';
    a.status = 500;
    b.mode = 'status';
    b.status = 503;
    for (const [model, stream] of [
      ['allfail', false],
      ['sallfail', true],
    ] as const) {
      const r = await post({ model, messages: msg, stream });
      assert.equal(r.status, 502, r.text);
      assert.equal(r.body.error.code, 'KAPOK_GATEWAY_UPSTREAM_FAILED');
      assert.match(
        r.body.error.message,
        new RegExp(`^every upstream attempt failed; last: b/${model} answered 503`),
      );
    }
    const r = await post({ model: 'refused', messages: msg });
    assert.equal(r.status, 502, r.text);
    assert.equal(r.body.error.code, 'KAPOK_GATEWAY_UPSTREAM_FAILED');
    assert.equal(r.body.error.message, 'every upstream attempt failed; last: dead/x could not be reached');
  });

  it('retry.maxAttempts: at most 3 upstream attempts on retryable answers (5xx, 429), fallbacks included; 1 on a 400', async () => {
    reset();
    a.mode = 'status';
    for (const [model, status, sent] of [
      ['four', 503, 3],
      ['four429', 429, 3],
      ['four400', 400, 1],
    ] as const) {
      a.requests.length = 0;
      a.status = status;
      const r = await post({ model, messages: msg });
      assert.equal(r.status, status === 400 ? 400 : 502, r.text);
      assert.equal(a.requests.length, sent, `${model}: attempts seen upstream`);
      assert.equal(new Set(a.requests.map((q) => q.body.model)).size, sent, 'each target at most once');
      assert.equal(b.requests.length, 0, `${model}: the fallback is past the third attempt`);
    }
    // One target and three fallbacks: the first two fallbacks are tried, the third is not.
    reset();
    a.mode = 'status';
    b.mode = 'status';
    const r = await post({ model: 'chain', messages: msg });
    assert.equal(r.status, 502);
    assert.equal(a.requests.length, 1);
    assert.deepEqual(
      b.requests.map((q) => q.body.model),
      ['x', 'y'],
    );
    assert.match(r.body.error.message, /last: b\/y answered 500/);
  });

  it('limits.defaultCompletionReserve: a request without max_tokens reserves prompt + the reserve, admitted exactly up to tpm', async () => {
    reset();
    const tokens = async (k: string, extra: Record<string, unknown>) => {
      const r = await post({ model: 'plain', messages: msg, ...extra }, {}, k);
      return {
        status: r.status,
        code: r.body.error?.code,
        remaining: Number(r.headers['x-ratelimit-remaining-tokens']),
      };
    };
    // The prompt's estimate, measured: with max_tokens 1 a fresh 10000-token window keeps 10000 - (prompt + 1).
    const probe = await gw.createKey({ tpm: 10_000 });
    const prompt = 10_000 - (await tokens(probe.key, { max_tokens: 1 })).remaining - 1;
    assert.ok(prompt > 0 && prompt < 50, `prompt estimate ${prompt}`);
    const need = prompt + RESERVE;

    // A tpm of exactly prompt + reserve admits it and leaves 0 ...
    const exact = await gw.createKey({ tpm: need });
    assert.deepEqual(await tokens(exact.key, {}), { status: 200, code: undefined, remaining: 0 });
    // ... one token less refuses it as larger than the whole limit,
    const short = await gw.createKey({ tpm: need - 1 });
    const refused = await tokens(short.key, {});
    assert.equal(refused.status, 429);
    assert.equal(refused.code, 'KAPOK_GATEWAY_REQUEST_TOO_LARGE');
    // while the same key admits the same prompt when max_tokens says it needs less.
    assert.deepEqual(await tokens(short.key, { max_tokens: RESERVE - 1 }), {
      status: 200,
      code: undefined,
      remaining: 0,
    });
    assert.equal(b.requests.length, 3, 'only the admitted requests reached the upstream');
  });

  it('preference header: 400 KAPOK_GATEWAY_PREFERENCE_INVALID when gateway.preference.allowed is empty', async () => {
    reset();
    for (const value of ['plain', 'nope']) {
      const r = await post({ model: 'plain', messages: msg }, { 'x-model-preference': value });
      assert.equal(r.status, 400, r.text);
      assert.deepEqual(r.body.error, {
        message: 'X-Model-Preference is not accepted here: gateway.preference.allowed is empty',
        type: 'invalid_request_error',
        code: 'KAPOK_GATEWAY_PREFERENCE_INVALID',
        param: 'X-Model-Preference',
      });
    }
    assert.equal(b.requests.length, 0);
  });

  it('admin API without a token: a forwarded request is 403 KAPOK_HTTP_ADMIN_DISABLED, on every route', async () => {
    for (const [method, path] of [
      ['GET', '/keys'],
      ['POST', '/keys'],
      ['DELETE', '/keys/none'],
      ['GET', '/usage'],
    ] as const) {
      const res = await request(`${gw.base}/api/gateway${path}`, {
        method,
        headers: { 'x-forwarded-for': '203.0.113.9', 'content-type': 'application/json' },
        ...(method === 'POST' ? { body: JSON.stringify({ name: 'x' }) } : {}),
      });
      const body = (await res.body.json()) as { error: { code: string; message: string } };
      assert.equal(res.statusCode, 403, `${method} ${path}`);
      assert.equal(body.error.code, 'KAPOK_HTTP_ADMIN_DISABLED');
      assert.match(
        body.error.message,
        /gateway\.auth\.adminToken is set \(KAPOK_GATEWAY__AUTH__ADMIN_TOKEN\)/,
      );
    }
    const keys = (await gw.admin('GET', '/keys')).body.keys as Array<{ name: string }>;
    assert.ok(!keys.some((k) => k.name === 'x'), 'the refused POST created nothing');
  });
});
