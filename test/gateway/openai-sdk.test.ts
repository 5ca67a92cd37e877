import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type OpenAI from 'openai';
import { request } from 'undici';
import { FAKE_USAGE, type FakeLlm, startFakeLlm } from '../helpers/fake-llm.js';
import { type Gw, startGateway } from './setup.js';

// The client is the official `openai` SDK; upstreams are the fake model servers in helpers/fake-llm.ts.
describe('gateway: OpenAI SDK against /v1', () => {
  let up: FakeLlm;
  let claude: FakeLlm;
  let gw: Gw;
  let key: string;

  before(async () => {
    up = await startFakeLlm('vllm-a');
    claude = await startFakeLlm('claude');
    gw = await startGateway({
      providers: [
        { name: 'vllm-a', type: 'openai', baseUrl: up.url },
        { name: 'claude', type: 'anthropic', baseUrl: claude.origin },
      ],
      models: [
        { name: 'qwen', targets: [{ provider: 'vllm-a', model: 'Qwen2.5-7B-Instruct' }] },
        { name: 'haiku', targets: [{ provider: 'claude', model: 'claude-3-5-haiku-latest' }] },
      ],
    });
    key = (await gw.createKey()).key;
  });
  after(async () => {
    await gw.stop();
    await Promise.all([up.close(), claude.close()]);
  });

  it('chat: upstream answer, target model sent upstream, usage from the upstream, x-kapok-target', async () => {
    const { data, response } = await gw
      .client(key)
      .chat.completions.create({ model: 'qwen', messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    assert.equal(data.choices[0]?.message.content, 'hello from vllm-a');
    assert.equal(data.usage?.prompt_tokens, FAKE_USAGE.prompt_tokens);
    assert.equal(response.headers.get('x-kapok-target'), 'vllm-a/Qwen2.5-7B-Instruct');
    assert.equal(response.headers.get('x-ratelimit-limit-requests'), '600');
    const sent = up.requests.at(-1);
    assert.equal(sent?.body.model, 'Qwen2.5-7B-Instruct');
    // Kapok's own key never reaches the upstream.
    assert.equal(sent?.headers.authorization, undefined);
  });

  it('stream: chunks arrive in order, ending cleanly; usage chunk only when asked for', async () => {
    const s = await gw.client(key).chat.completions.create({
      model: 'qwen',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
    });
    let text = '';
    let usageChunks = 0;
    for await (const c of s) {
      text += c.choices[0]?.delta.content ?? '';
      if (c.usage) usageChunks++;
    }
    assert.equal(text, 'w0 w1 w2 ');
    assert.equal(usageChunks, 0, 'client did not ask for usage');
    // The gateway asked the upstream for usage anyway.
    assert.deepEqual(up.requests.at(-1)?.body.stream_options, { include_usage: true });

    const s2 = await gw.client(key).chat.completions.create({
      model: 'qwen',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const c of s2) if (c.usage) usage = c.usage;
    assert.equal(usage?.completion_tokens, FAKE_USAGE.completion_tokens);
  });

  it("trace context: the upstream joins the caller's trace; log lines carry its trace id", async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    await gw
      .client(key)
      .chat.completions.create(
        { model: 'qwen', messages: [{ role: 'user', content: 'hi' }] },
        { headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } },
      );
    const sent = String(up.requests.at(-1)?.headers.traceparent);
    assert.match(sent, new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    assert.ok(!sent.includes('00f067aa0ba902b7'), "the upstream call is a child span, not the caller's");
  });

  it('embeddings and models', async () => {
    const e = await gw.client(key).embeddings.create({ model: 'qwen', input: ['a', 'b'] });
    assert.equal(e.data.length, 2);
    assert.equal(up.requests.at(-1)?.path, '/v1/embeddings');
    const models = await gw.client(key).models.list();
    assert.deepEqual(models.data.map((m) => m.id).sort(), ['haiku', 'qwen']);
  });

  it('anthropic: system prompt, messages and tools translated both ways', async () => {
    const r = await gw.client(key).chat.completions.create({
      model: 'haiku',
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'weather?' },
      ],
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }],
      max_tokens: 100,
    });
    const sent = claude.requests.at(-1);
    assert.equal(sent?.path, '/v1/messages');
    assert.equal(sent?.body.system, 'be brief');
    assert.equal(sent?.body.max_tokens, 100);
    assert.deepEqual(sent?.body.messages, [{ role: 'user', content: [{ type: 'text', text: 'weather?' }] }]);
    assert.equal(sent?.headers['anthropic-version'], '2023-06-01');
    assert.equal(r.choices[0]?.finish_reason, 'tool_calls');
    const call = r.choices[0]?.message.tool_calls?.[0] as
      | OpenAI.ChatCompletionMessageFunctionToolCall
      | undefined;
    assert.equal(call?.function.arguments, '{"city":"Guangzhou"}');
    assert.equal(r.usage?.prompt_tokens, FAKE_USAGE.prompt_tokens);
    assert.equal(r.model, 'haiku');
  });

  it('anthropic stream: text, tool-call deltas, finish reason and usage', async () => {
    const s = await gw.client(key).chat.completions.create({
      model: 'haiku',
      messages: [{ role: 'user', content: 'weather?' }],
      tools: [{ type: 'function', function: { name: 'get_weather' } }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let args = '';
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const c of s) {
      text += c.choices[0]?.delta.content ?? '';
      args += c.choices[0]?.delta.tool_calls?.[0]?.function?.arguments ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
      if (c.usage) usage = c.usage;
    }
    assert.equal(text, 'hello there');
    assert.equal(args, '{"city":"Guangzhou"}');
    assert.equal(finish, 'tool_calls');
    assert.deepEqual(
      [usage?.prompt_tokens, usage?.completion_tokens],
      [FAKE_USAGE.prompt_tokens, FAKE_USAGE.completion_tokens],
    );
  });

  it('a body the anthropic transform refuses is a 400 naming the param, and its quota is refunded', async () => {
    const { key: limited } = await gw.createKey({ tpm: 1000 });
    const bad = {
      model: 'haiku',
      max_tokens: 300,
      messages: [
        { role: 'user' as const, content: 'x' },
        {
          role: 'assistant' as const,
          tool_calls: [
            { id: 't', type: 'function' as const, function: { name: 'f', arguments: '{not json' } },
          ],
        },
      ],
    };
    await assert.rejects(
      gw.client(limited).chat.completions.create(bad),
      (e: InstanceType<typeof OpenAI.APIError>) => {
        assert.equal(e.status, 400);
        assert.equal(e.param, 'messages[1].tool_calls[0].function.arguments');
        return true;
      },
    );
    await new Promise((r) => setTimeout(r, 20));
    const ok = await gw
      .client(limited)
      .chat.completions.create({
        model: 'haiku',
        max_tokens: 300,
        messages: [{ role: 'user', content: 'x' }],
      })
      .withResponse();
    const remaining = Number(ok.response.headers.get('x-ratelimit-remaining-tokens'));
    assert.ok(remaining > 1000 - 320, `the refused request left no charge (remaining ${remaining})`);
  });

  it('anthropic has no embeddings: 400 KAPOK_GATEWAY_UNSUPPORTED', async () => {
    await assert.rejects(
      gw.client(key).embeddings.create({ model: 'haiku', input: 'x' }),
      (e: InstanceType<typeof OpenAI.APIError>) => e.status === 400 && e.code === 'KAPOK_GATEWAY_UNSUPPORTED',
    );
  });

  it('errors come in OpenAI shape with stable codes', async () => {
    const cases: Array<[() => Promise<unknown>, number, string]> = [
      [
        () => gw.client(`sk-kapok-0000000000000000-${'A'.repeat(43)}`).models.list(),
        401,
        'KAPOK_GATEWAY_AUTH_INVALID',
      ],
      [() => gw.client('not-a-key').models.list(), 401, 'KAPOK_GATEWAY_AUTH_INVALID'],
      [
        () =>
          gw
            .client(key)
            .chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }),
        404,
        'KAPOK_GATEWAY_MODEL_NOT_FOUND',
      ],
      [
        () => gw.client(key).chat.completions.create({ model: 'qwen', messages: [] }),
        400,
        'KAPOK_GATEWAY_BAD_REQUEST',
      ],
    ];
    for (const [call, status, code] of cases) {
      await assert.rejects(call(), (e: InstanceType<typeof OpenAI.APIError>) => {
        assert.equal(e.status, status);
        assert.equal(e.code, code);
        assert.ok(e.message.length > 10);
        return true;
      });
    }
    const noAuth = await request(`${gw.base}/v1/models`);
    assert.equal(noAuth.statusCode, 401);
    const b = (await noAuth.body.json()) as { error: { code: string; type: string } };
    assert.deepEqual([b.error.code, b.error.type], ['KAPOK_GATEWAY_AUTH_MISSING', 'authentication_error']);
  });
});
