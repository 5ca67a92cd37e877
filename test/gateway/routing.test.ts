import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type OpenAI from 'openai';
import { request } from 'undici';
import { type FakeLlm, startFakeLlm } from '../helpers/fake-llm.js';
import { freePort } from '../helpers/ports.js';
import { type Gw, startGateway } from './setup.js';

type ApiError = InstanceType<typeof OpenAI.APIError>;
const msg = [{ role: 'user' as const, content: 'hi' }];

// Upstreams are the fake model servers of helpers/fake-llm.ts; the client is the openai SDK.
describe('gateway: routing, fallbacks, circuits, streaming failures', () => {
  let a: FakeLlm;
  let b: FakeLlm;
  let fb: FakeLlm;
  let gw: Gw;
  let key: string;
  let dead: number;

  before(async () => {
    [a, b, fb] = await Promise.all([startFakeLlm('a'), startFakeLlm('b'), startFakeLlm('fb')]);
    dead = await freePort();
    gw = await startGateway({
      providers: [
        { name: 'a', type: 'openai', baseUrl: a.url, timeoutMs: 300 },
        { name: 'b', type: 'openai', baseUrl: b.url, timeoutMs: 300 },
        { name: 'fb', type: 'openai', baseUrl: fb.url },
        { name: 'dead', type: 'openai', baseUrl: `http://127.0.0.1:${dead}/v1`, connectTimeoutMs: 500 },
      ],
      models: [
        {
          name: 'weighted',
          targets: [
            { provider: 'a', model: 'm', weight: 3 },
            { provider: 'b', model: 'm', weight: 1 },
          ],
        },
        {
          name: 'big',
          targets: [{ provider: 'a', model: 'small' }],
          degrade: { aboveTokens: 50, to: { provider: 'b', model: 'small-awq' } },
        },
        // One model per test below: circuits are per target, so failures in one test do not open another's.
        ...['withfb', 'fb4xx', 'fbstream', 'fbcut', 'fbabort'].map((name) => ({
          name,
          targets: [{ provider: 'a', model: name }],
          fallbacks: [{ provider: 'fb', model: 'y' }],
        })),
        {
          name: 'refused',
          targets: [{ provider: 'dead', model: 'x' }],
          fallbacks: [{ provider: 'fb', model: 'y' }],
        },
        { name: 'solo', targets: [{ provider: 'b', model: 'solo' }] },
        { name: 'gemma', targets: [{ provider: 'fb', model: 'gemma' }] },
      ],
      preference: { allowed: ['gemma', 'solo'] },
      circuit: { failureThreshold: 2, cooldownMs: 300 },
      bodyLimitBytes: 256 * 1024,
    });
    key = (await gw.createKey()).key;
  });
  after(async () => {
    await gw.stop();
    await Promise.all([a.close(), b.close(), fb.close()]);
  });
  const reset = () => {
    for (const f of [a, b, fb]) {
      f.mode = 'ok';
      f.requests.length = 0;
      f.aborted = 0;
    }
  };

  it('weights: about 3:1 between two targets', async () => {
    reset();
    const c = gw.client(key);
    const hits = { a: 0, b: 0 };
    for (let i = 0; i < 200; i++) {
      const { response } = await c.chat.completions
        .create({ model: 'weighted', messages: msg })
        .withResponse();
      hits[response.headers.get('x-kapok-target')?.startsWith('a/') ? 'a' : 'b']++;
    }
    // 200 draws at p = 0.75: mean 150, sd 6.1; 120..180 is about ±5 sd.
    assert.ok(hits.a > 120 && hits.a < 180, `a got ${hits.a} of 200`);
    assert.equal(hits.a + hits.b, 200);
  });

  it('prompt-size degradation: a long prompt goes to degrade.to, a short one does not', async () => {
    reset();
    const c = gw.client(key);
    await c.chat.completions.create({ model: 'big', messages: msg });
    assert.equal(a.requests.at(-1)?.body.model, 'small');
    const long = 'the quick brown fox jumps over the lazy dog '.repeat(20); // ~180 tokens
    const { response } = await c.chat.completions
      .create({ model: 'big', messages: [{ role: 'user', content: long }] })
      .withResponse();
    assert.equal(response.headers.get('x-kapok-target'), 'b/small-awq');
    assert.equal(b.requests.at(-1)?.body.model, 'small-awq');
  });

  it('fallback on 500, on timeout and on connection refused', async () => {
    reset();
    const c = gw.client(key);
    a.mode = 'status';
    a.status = 500;
    let r = await c.chat.completions.create({ model: 'withfb', messages: msg }).withResponse();
    assert.equal(r.response.headers.get('x-kapok-target'), 'fb/y');
    a.mode = 'hang';
    r = await c.chat.completions.create({ model: 'withfb', messages: msg }).withResponse();
    assert.equal(r.response.headers.get('x-kapok-target'), 'fb/y');
    r = await c.chat.completions.create({ model: 'refused', messages: msg }).withResponse();
    assert.equal(r.response.headers.get('x-kapok-target'), 'fb/y');
    assert.equal(fb.requests.length, 3);
  });

  it('an upstream 4xx (other than 429) is passed on, not retried', async () => {
    reset();
    a.mode = 'status';
    a.status = 400;
    await assert.rejects(
      gw.client(key).chat.completions.create({ model: 'fb4xx', messages: msg }),
      (e: ApiError) => {
        assert.equal(e.status, 400);
        assert.match(e.message, /fake a says 400/);
        return true;
      },
    );
    assert.equal(fb.requests.length, 0);
  });

  it('circuit opens after consecutive failures, skips the target, half-opens after the cool-down', async () => {
    reset();
    const c = gw.client(key);
    b.mode = 'status';
    b.status = 503;
    for (let i = 0; i < 2; i++) {
      await assert.rejects(
        c.chat.completions.create({ model: 'solo', messages: msg }),
        (e: ApiError) => e.status === 502,
      );
    }
    const before = b.requests.length;
    await assert.rejects(c.chat.completions.create({ model: 'solo', messages: msg }), (e: ApiError) => {
      assert.equal(e.status, 503);
      assert.equal(e.code, 'KAPOK_GATEWAY_NO_TARGET');
      return true;
    });
    assert.equal(b.requests.length, before, 'an open circuit sends nothing upstream');
    const ready = (await (await request(`${gw.base}/readyz`)).body.json()) as {
      components: Array<{ name: string; detail?: { open?: string[] } }>;
    };
    assert.ok(ready.components.find((x) => x.name === 'gateway')?.detail?.open?.includes('b/solo'));
    const metrics = await (await request(`${gw.base}/metrics`)).body.text();
    assert.match(metrics, /kapok_gateway_circuit_state\{target="b\/solo"[^}]*\} 2/);

    await new Promise((r) => setTimeout(r, 350));
    b.mode = 'ok';
    const ok = await c.chat.completions.create({ model: 'solo', messages: msg });
    assert.equal(ok.choices[0]?.message.content, 'hello from b');
    const after = await (await request(`${gw.base}/metrics`)).body.text();
    assert.match(after, /kapok_gateway_circuit_state\{target="b\/solo"[^}]*\} 0/);
  });

  it('stream: fails over before the first byte, never after it; a cut ends with an error event', async () => {
    reset();
    const c = gw.client(key);
    // Before the first byte: a 500 on a is retried on fb.
    a.mode = 'status';
    a.status = 500;
    let text = '';
    for await (const ch of await c.chat.completions.create({
      model: 'fbstream',
      messages: msg,
      stream: true,
    }))
      text += ch.choices[0]?.delta.content ?? '';
    assert.equal(text, 'w0 w1 w2 ');
    assert.equal(fb.requests.length, 1);

    // After the first byte: a cut mid-stream is not retried and is reported as an error.
    reset();
    a.mode = 'cut';
    const got: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const ch of await c.chat.completions.create({
          model: 'fbcut',
          messages: msg,
          stream: true,
        }))
          got.push(ch.choices[0]?.delta.content ?? '');
      })(),
      (e: Error) => {
        assert.match(e.message, /ended before completion/);
        return true;
      },
    );
    assert.deepEqual(got, ['w0 ', 'w1 ']);
    assert.equal(fb.requests.length, 0, 'no retry after a streamed byte');
  });

  it('stream: the raw response of a cut stream has no [DONE]', async () => {
    reset();
    a.mode = 'cut';
    const res = await request(`${gw.base}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'fbcut', messages: msg, stream: true }),
    });
    const raw = await res.body.text();
    assert.equal(res.statusCode, 200);
    assert.ok(!raw.includes('[DONE]'));
    assert.match(
      raw,
      /event: error\ndata: \{"error":\{"message":"upstream a\/fbcut stream ended before completion"/,
    );
  });

  it('client abort mid-stream aborts the upstream request', async () => {
    reset();
    a.mode = 'slowStream';
    a.streamChunks = 50;
    const ac = new AbortController();
    const s = await gw
      .client(key)
      .chat.completions.create({ model: 'fbabort', messages: msg, stream: true }, { signal: ac.signal });
    let n = 0;
    try {
      for await (const _ of s) if (++n === 2) ac.abort();
    } catch {
      // the SDK may end the iteration or throw an abort error: either way the client went away
    }
    assert.equal(n, 2);
    const deadline = Date.now() + 2000;
    while (a.aborted === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(a.aborted, 1, 'upstream connection closed before its response finished');
    a.streamChunks = 3;
  });

  it('preference header: an allowed value overrides the body model; anything else is 400 without echo', async () => {
    reset();
    const c = gw.client(key);
    const r = await c.chat.completions
      .create({ model: 'weighted', messages: msg }, { headers: { 'X-Model-Preference': 'gemma' } })
      .withResponse();
    assert.equal(r.response.headers.get('x-kapok-target'), 'fb/gemma');
    const hostile = [
      'weighted',
      '../../etc/passwd',
      '<script>alert(1)</script>',
      'gemma\r\nx: y',
      'a'.repeat(5000),
      '"gemma"',
    ];
    for (const v of hostile) {
      const res = await request(`${gw.base}/v1/chat/completions`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${key}`,
          'content-type': 'application/json',
          'x-model-preference': v.replace(/[\r\n]/g, ''),
        },
        body: JSON.stringify({ model: 'weighted', messages: msg }),
      });
      const body = await res.body.text();
      assert.equal(res.statusCode, 400, v.slice(0, 20));
      assert.match(body, /must be one of: gemma, solo/);
      assert.ok(
        !body.includes('passwd') && !body.includes('script') && !body.includes('aaaa'),
        'value not echoed',
      );
    }
    assert.ok(!gw.logs.text().includes('passwd'), 'value not logged');
    assert.equal(a.requests.length + b.requests.length, 0, 'nothing reached an upstream');
  });

  it('bad bodies: invalid JSON, oversized, wrong types', async () => {
    const post = (body: string, type = 'application/json') =>
      request(`${gw.base}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': type },
        body,
      });
    const cases: Array<[string, number, RegExp]> = [
      ['{"model":', 400, /"type":"invalid_request_error"/],
      ['[1,2]', 400, /"param":"body"/],
      [JSON.stringify({ model: 'solo', messages: 'hi' }), 400, /"param":"messages"/],
      [JSON.stringify({ model: 'solo', messages: msg, max_tokens: -1 }), 400, /"param":"max_tokens"/],
      [JSON.stringify({ model: 'solo', messages: msg, stream: 'yes' }), 400, /"param":"stream"/],
      [
        JSON.stringify({ model: 'solo', messages: [{ role: 'user', content: 'x'.repeat(300 * 1024) }] }),
        413,
        /gateway\.bodyLimitBytes.*"code":"KAPOK_HTTP_BODY_TOO_LARGE"/,
      ],
    ];
    for (const [body, status, re] of cases) {
      const res = await post(body);
      const text = await res.body.text();
      assert.equal(res.statusCode, status, body.slice(0, 40));
      assert.match(text, re);
      assert.match(text, /^\{"error":\{"message":/);
    }
  });
});
