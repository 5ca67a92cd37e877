import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type OpenAI from 'openai';
import { request } from 'undici';
import { FAKE_USAGE, type FakeLlm, startFakeLlm } from '../helpers/fake-llm.js';
import { promtoolCheck } from '../helpers/probes.js';
import { type Gw, startGateway } from './setup.js';

type ApiError = InstanceType<typeof OpenAI.APIError>;
const msg = [{ role: 'user' as const, content: 'hi' }];
const REAL = FAKE_USAGE.prompt_tokens + FAKE_USAGE.completion_tokens;

// Memory KV backend (the default). Upstream: the fake model server of helpers/fake-llm.ts.
describe('gateway quotas (memory KV) and usage', () => {
  let up: FakeLlm;
  let gw: Gw;

  before(async () => {
    up = await startFakeLlm('up');
    gw = await startGateway({
      providers: [{ name: 'up', type: 'openai', baseUrl: up.url }],
      models: [{ name: 'qwen', targets: [{ provider: 'up', model: 'q' }] }],
    });
  });
  after(async () => {
    await gw.stop();
    await up.close();
  });

  it('requests per minute: the limit is admitted, the next is 429 with Retry-After and x-ratelimit headers', async () => {
    const { key } = await gw.createKey({ rpm: 3 });
    const c = gw.client(key);
    const remaining: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await c.chat.completions.create({ model: 'qwen', messages: msg }).withResponse();
      remaining.push(r.response.headers.get('x-ratelimit-remaining-requests') ?? '');
    }
    assert.deepEqual(remaining, ['2', '1', '0']);
    await assert.rejects(c.chat.completions.create({ model: 'qwen', messages: msg }), (e: ApiError) => {
      assert.equal(e.status, 429);
      assert.equal(e.code, 'KAPOK_GATEWAY_RATE_LIMITED');
      const retry = Number(e.headers?.get('retry-after'));
      assert.ok(retry >= 1 && retry <= 60, `retry-after ${retry}`);
      assert.equal(e.headers?.get('x-ratelimit-remaining-requests'), '0');
      assert.match(e.headers?.get('x-ratelimit-reset-requests') ?? '', /^\d+(\.\d)?s$|^\d+m\d+s$/);
      return true;
    });
  });

  it('tokens per minute: reserve prompt + max_tokens, settle with the real usage (streamed too)', async () => {
    const { key } = await gw.createKey({ tpm: 1000 });
    const c = gw.client(key);
    const first = await c.chat.completions
      .create({ model: 'qwen', messages: msg, max_tokens: 300 })
      .withResponse();
    const reserved = 1000 - Number(first.response.headers.get('x-ratelimit-remaining-tokens'));
    assert.ok(reserved > 300 && reserved < 320, `reserved ${reserved}`);
    await new Promise((r) => setTimeout(r, 20)); // settle runs after the reply
    // Second call: the first was settled down to the upstream's real usage.
    const second = await c.chat.completions
      .create({ model: 'qwen', messages: msg, max_tokens: 300 })
      .withResponse();
    assert.equal(Number(second.response.headers.get('x-ratelimit-remaining-tokens')), 1000 - REAL - reserved);
    await new Promise((r) => setTimeout(r, 20));
    const s = await c.chat.completions
      .create({ model: 'qwen', messages: msg, max_tokens: 300, stream: true })
      .withResponse();
    for await (const _ of s.data) {
      // drain
    }
    assert.equal(Number(s.response.headers.get('x-ratelimit-remaining-tokens')), 1000 - 2 * REAL - reserved);
    await new Promise((r) => setTimeout(r, 20));
    const fourth = await c.chat.completions
      .create({ model: 'qwen', messages: msg, max_tokens: 300 })
      .withResponse();
    assert.equal(
      Number(fourth.response.headers.get('x-ratelimit-remaining-tokens')),
      1000 - 3 * REAL - reserved,
      'streamed usage settled like the rest',
    );
  });

  it('a request larger than the whole tpm is refused without Retry-After', async () => {
    const { key } = await gw.createKey({ tpm: 100 });
    await assert.rejects(
      gw.client(key).chat.completions.create({ model: 'qwen', messages: msg, max_tokens: 500 }),
      (e: ApiError) => {
        assert.equal(e.status, 429);
        assert.equal(e.code, 'KAPOK_GATEWAY_REQUEST_TOO_LARGE');
        assert.equal(e.headers?.get('retry-after'), null);
        return true;
      },
    );
  });

  it('usage: every request recorded with key, model, target, tokens; totals by model and by key', async () => {
    const { id, key } = await gw.createKey();
    const c = gw.client(key);
    await c.chat.completions.create({ model: 'qwen', messages: msg });
    for await (const _ of await c.chat.completions.create({ model: 'qwen', messages: msg, stream: true })) {
      // drain
    }
    await assert.rejects(c.chat.completions.create({ model: 'qwen', messages: [] }));
    const r = await gw.admin('GET', `/usage?key=${id}&groupBy=model`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.rows, [
      {
        group: 'qwen',
        requests: 2,
        errors: 0,
        prompt_tokens: 2 * FAKE_USAGE.prompt_tokens,
        completion_tokens: 2 * FAKE_USAGE.completion_tokens,
        total_tokens: 2 * REAL,
      },
    ]);
    const byKey = await gw.admin('GET', '/usage?groupBy=key');
    assert.ok(byKey.body.rows.some((row: { group: string }) => row.group === `key:${id}`));
    const byTarget = await gw.admin('GET', `/usage?key=${id}&groupBy=target`);
    assert.equal(byTarget.body.rows[0].group, 'up/q');
    for (const bad of [
      'groupBy=nope',
      'from=yesterday',
      'from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z',
    ]) {
      const res = await gw.admin('GET', `/usage?${bad}`);
      assert.equal(res.status, 400, bad);
    }
  });

  it('metrics: requests, tokens, overhead and time to first token', async () => {
    const text = await (await request(`${gw.base}/metrics`)).body.text();
    assert.match(
      text,
      /kapok_gateway_requests_total\{endpoint="chat",model="qwen",target="up\/q",status="200"[^}]*\} \d+/,
    );
    assert.match(text, /kapok_gateway_tokens_total\{model="qwen",target="up\/q",direction="out"[^}]*\} \d+/);
    assert.match(text, /kapok_gateway_overhead_seconds_count\{[^}]*\} \d+/);
    assert.match(
      text,
      /kapok_gateway_time_to_first_token_seconds_count\{[^}]*model="qwen",target="up\/q"[^}]*\} \d+/,
    );
    assert.match(text, /kapok_gateway_upstream_attempts_total\{target="up\/q",outcome="ok"[^}]*\} \d+/);
  });

  it('the metrics page passes promtool check metrics (gateway metrics included)', async (t) => {
    const text = await (await request(`${gw.base}/metrics`)).body.text();
    assert.match(text, /kapok_gateway_circuit_state/);
    const out = await promtoolCheck(t, text);
    if (out) assert.equal(out.code, 0, out.stderr);
  });
});
