import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { request } from 'undici';
import { type FakeUpstream, startFakeUpstream, USAGE } from '../helpers/fake-protocols.js';
import { type Gw, startGateway } from './setup.js';

// The client is the official `@anthropic-ai/sdk`, pointed at Kapok; the upstreams are the fake
// model servers of helpers/fake-protocols.ts (fixed answers, fixed usage, no model: see its limits).
describe('gateway: POST /v1/messages (Anthropic ingress) through the Anthropic SDK', () => {
  let local: FakeUpstream; // OpenAI-compatible: translated
  let claude: FakeUpstream; // Anthropic: passed through
  let gw: Gw;
  let key: string;
  let keyId: string;

  before(async () => {
    [local, claude] = await Promise.all([startFakeUpstream('local'), startFakeUpstream('claude')]);
    gw = await startGateway({
      providers: [
        { name: 'local', type: 'openai', baseUrl: local.url },
        { name: 'claude', type: 'anthropic', baseUrl: claude.origin },
      ],
      models: [
        { name: 'qwen', targets: [{ provider: 'local', model: 'qwen2.5:7b-q4' }] },
        { name: 'sonnet', targets: [{ provider: 'claude', model: 'claude-sonnet-4-5' }] },
      ],
    });
    ({ key, id: keyId } = await gw.createKey());
  });
  after(async () => {
    await gw.stop();
    await Promise.all([local.close(), claude.close()]);
  });

  const client = (apiKey = key) =>
    new Anthropic({ apiKey, baseURL: gw.base, maxRetries: 0, timeout: 10_000 });
  const tools: Anthropic.Tool[] = [
    {
      name: 'get_weather',
      description: 'Weather in a city',
      input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
  ];

  it('OpenAI-compatible upstream: translated request and answer, client model name, usage', async () => {
    const { data, response } = await client()
      .messages.create({
        model: 'qwen',
        max_tokens: 64,
        system: 'Be brief.',
        messages: [{ role: 'user', content: 'hi' }],
        stop_sequences: ['END'],
      })
      .withResponse();
    assert.equal(data.type, 'message');
    assert.deepEqual(data.content, [{ type: 'text', text: 'hello from local' }]);
    assert.equal(data.model, 'qwen');
    assert.equal(data.stop_reason, 'end_turn');
    assert.equal(data.usage.input_tokens, USAGE.prompt_tokens);
    assert.equal(data.usage.output_tokens, USAGE.completion_tokens);
    assert.equal(response.headers.get('x-kapok-upstream-model'), 'qwen2.5:7b-q4');
    const up = local.requests.at(-1);
    assert.equal(up?.path, '/v1/chat/completions');
    assert.deepEqual(up?.body.messages, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'hi' },
    ]);
    assert.equal(up?.body.max_tokens, 64);
    assert.deepEqual(up?.body.stop, ['END']);
    // Kapok's key travelled as x-api-key and never reaches the upstream.
    assert.equal(up?.headers['x-api-key'], undefined);
  });

  it('tools: tool_use with a parsed input, then tool_result fed back; images as image_url', async () => {
    const first = await client().messages.create({
      model: 'qwen',
      max_tokens: 64,
      tools,
      tool_choice: { type: 'any' },
      messages: [{ role: 'user', content: 'weather in Guangzhou?' }],
    });
    assert.equal(first.stop_reason, 'tool_use');
    const use = first.content.find((b) => b.type === 'tool_use');
    assert.ok(use?.type === 'tool_use');
    assert.equal(use.name, 'get_weather');
    assert.deepEqual(use.input, { city: 'Guangzhou' });
    const up1 = local.requests.at(-1)?.body;
    assert.equal(up1?.tools[0].function.name, 'get_weather');
    assert.equal(up1?.tool_choice, 'required');

    const second = await client().messages.create({
      model: 'qwen',
      max_tokens: 64,
      tools,
      messages: [
        { role: 'user', content: 'weather in Guangzhou?' },
        { role: 'assistant', content: first.content },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: use.id, content: '31°C' },
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
          ],
        },
      ],
    });
    assert.deepEqual(second.content, [{ type: 'text', text: 'hello from local' }]);
    const msgs = local.requests.at(-1)?.body.messages;
    assert.equal(msgs[1].tool_calls[0].id, use.id);
    assert.deepEqual(JSON.parse(msgs[1].tool_calls[0].function.arguments), { city: 'Guangzhou' });
    assert.deepEqual(msgs[2], { role: 'tool', tool_call_id: use.id, content: '31°C' });
    assert.deepEqual(msgs[3].content[0], {
      type: 'image_url',
      image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' },
    });
  });

  it('messages.stream, translated: text and tool_use blocks accumulate in the SDK', async () => {
    const s = client().messages.stream({
      model: 'qwen',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'hi' }],
    });
    let text = '';
    s.on('text', (t) => {
      text += t;
    });
    const final = await s.finalMessage();
    assert.equal(text, 'hello from local');
    assert.deepEqual(
      final.content,
      [{ type: 'text', text: 'hello from local', citations: null }].map(strip(final)),
    );
    assert.equal(final.usage.output_tokens, USAGE.completion_tokens);
    assert.equal(final.model, 'qwen');

    const t = await client()
      .messages.stream({
        model: 'qwen',
        max_tokens: 64,
        tools,
        messages: [{ role: 'user', content: 'weather?' }],
      })
      .finalMessage();
    const use = t.content.find((b) => b.type === 'tool_use');
    assert.ok(use?.type === 'tool_use');
    assert.deepEqual(use.input, { city: 'Guangzhou' });
    assert.equal(t.stop_reason, 'tool_use');
  });

  it('Anthropic upstream: the body passed through with the target model, answer renamed, stream relayed', async () => {
    const r = await client().messages.create({
      model: 'sonnet',
      max_tokens: 32,
      messages: [{ role: 'user', content: 'hi' }],
    });
    assert.equal(r.model, 'sonnet');
    assert.deepEqual(r.content, [{ type: 'text', text: 'hello from claude' }]);
    const up = claude.requests.at(-1);
    assert.equal(up?.path, '/v1/messages');
    assert.deepEqual(up?.body, {
      model: 'claude-sonnet-4-5',
      max_tokens: 32,
      messages: [{ role: 'user', content: 'hi' }],
    });
    const s = client().messages.stream({
      model: 'sonnet',
      max_tokens: 32,
      tools,
      messages: [{ role: 'user', content: 'w?' }],
    });
    const final = await s.finalMessage();
    assert.equal(final.model, 'sonnet');
    const use = final.content.find((b) => b.type === 'tool_use');
    assert.ok(use?.type === 'tool_use');
    assert.deepEqual(use.input, { city: 'Guangzhou' });
    assert.equal(final.usage.input_tokens, USAGE.prompt_tokens);
  });

  it('a stream cut after data went out raises in the SDK (an error event, never message_stop)', async () => {
    for (const [fake, model] of [
      [local, 'qwen'],
      [claude, 'sonnet'],
    ] as const) {
      fake.cut = true;
      try {
        const s = client().messages.stream({
          model,
          max_tokens: 32,
          messages: [{ role: 'user', content: 'hi' }],
        });
        await assert.rejects(s.finalMessage(), (e: Error) => {
          assert.match(e.message, /stream ended before completion|KAPOK_GATEWAY_STREAM_INTERRUPTED/);
          return true;
        });
      } finally {
        fake.cut = false;
      }
    }
  });

  it('usage recorded; quota applies (429 in Anthropic shape)', async () => {
    const deadline = Date.now() + 3000;
    let rows: Array<{ group: string; requests: number; prompt_tokens: number }> = [];
    while (Date.now() < deadline) {
      rows = (await gw.admin('GET', `/usage?key=${keyId}&groupBy=model`)).body.rows;
      if ((rows.find((r) => r.group === 'sonnet')?.requests ?? 0) >= 3) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(rows.find((r) => r.group === 'sonnet')?.requests, 3);
    const limited = (await gw.createKey({ rpm: 1 })).key;
    await client(limited).messages.create({
      model: 'qwen',
      max_tokens: 8,
      messages: [{ role: 'user', content: 'a' }],
    });
    await assert.rejects(
      client(limited).messages.create({
        model: 'qwen',
        max_tokens: 8,
        messages: [{ role: 'user', content: 'a' }],
      }),
      (e: unknown) => {
        assert.ok(e instanceof Anthropic.RateLimitError);
        assert.equal((e.error as { error: { type: string } }).error.type, 'rate_limit_error');
        return true;
      },
    );
  });

  it("messages.countTokens: Kapok's estimate, with a key, nothing sent upstream", async () => {
    const before = local.requests.length;
    const short = await client().messages.countTokens({
      model: 'qwen',
      messages: [{ role: 'user', content: 'hi' }],
    });
    const long = await client().messages.countTokens({
      model: 'qwen',
      system: 'You are a careful assistant.',
      messages: [{ role: 'user', content: 'hello there '.repeat(50) }],
    });
    assert.ok(short.input_tokens > 0);
    assert.ok(long.input_tokens > short.input_tokens + 50, `${long.input_tokens} vs ${short.input_tokens}`);
    assert.equal(local.requests.length, before);
    await assert.rejects(
      client('kpk_wrong').messages.countTokens({ model: 'qwen', messages: [{ role: 'user', content: 'a' }] }),
      Anthropic.AuthenticationError,
    );
    await assert.rejects(
      client().messages.countTokens({ model: 'nope', messages: [{ role: 'user', content: 'a' }] }),
      Anthropic.NotFoundError,
    );
  });

  it('wrong keys and bad bodies get Anthropic-shaped errors with Kapok codes', async () => {
    await assert.rejects(
      client('kpk_wrong').messages.create({
        model: 'qwen',
        max_tokens: 8,
        messages: [{ role: 'user', content: 'a' }],
      }),
      Anthropic.AuthenticationError,
    );
    const post = async (body: unknown, headers: Record<string, string> = { 'x-api-key': key }) => {
      const res = await request(`${gw.base}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
      return {
        status: res.statusCode,
        body: (await res.body.json()) as { type: string; error: Record<string, string> },
      };
    };
    const ok = { model: 'qwen', max_tokens: 8, messages: [{ role: 'user', content: 'a' }] };
    const missing = await post(ok, {});
    assert.equal(missing.status, 401);
    assert.equal(missing.body.type, 'error');
    assert.equal(missing.body.error.type, 'authentication_error');
    assert.equal(missing.body.error.code, 'KAPOK_GATEWAY_AUTH_MISSING');
    assert.equal((await post(ok, { authorization: `Bearer ${key}` })).status, 200);
    const cases: Array<[unknown, number, string, string, string | null]> = [
      [
        { model: 'qwen', messages: ok.messages },
        400,
        'invalid_request_error',
        'KAPOK_GATEWAY_BAD_REQUEST',
        'max_tokens',
      ],
      [
        { model: 'qwen', max_tokens: 8, messages: [] },
        400,
        'invalid_request_error',
        'KAPOK_GATEWAY_BAD_REQUEST',
        'messages',
      ],
      [
        { ...ok, messages: [{ role: 'system', content: 'x' }] },
        400,
        'invalid_request_error',
        'KAPOK_GATEWAY_BAD_REQUEST',
        'messages.0.role',
      ],
      [
        { ...ok, messages: [{ role: 'user', content: [{ type: 'document' }] }] },
        400,
        'invalid_request_error',
        'KAPOK_GATEWAY_BAD_REQUEST',
        'messages.0.content.0.type',
      ],
      [
        { ...ok, tools: [{ type: 'web_search_20250305', name: 'web_search' }] },
        400,
        'invalid_request_error',
        'KAPOK_GATEWAY_BAD_REQUEST',
        'tools.0',
      ],
      [
        { ...ok, messages: Array(10_001).fill({ role: 'user', content: 'x' }) },
        400,
        'invalid_request_error',
        'KAPOK_GATEWAY_BAD_REQUEST',
        'messages',
      ],
      ['null', 400, 'invalid_request_error', 'KAPOK_GATEWAY_BAD_REQUEST', 'body'],
      ['{"model":', 400, 'invalid_request_error', 'KAPOK_HTTP_BAD_REQUEST', null],
      [{ ...ok, model: 'nope' }, 404, 'not_found_error', 'KAPOK_GATEWAY_MODEL_NOT_FOUND', 'model'],
      [
        { ...ok, messages: [{ role: 'user', content: 'x'.repeat(17 * 1024 * 1024) }] },
        413,
        'request_too_large',
        'KAPOK_HTTP_BODY_TOO_LARGE',
        null,
      ],
    ];
    for (const [body, status, type, code, param] of cases) {
      const r = await post(body);
      assert.equal(r.status, status, JSON.stringify(r.body).slice(0, 300));
      assert.equal(r.body.type, 'error');
      assert.equal(r.body.error.type, type);
      assert.equal(r.body.error.code, code);
      if (param) assert.equal(r.body.error.param, param);
      assert.ok((r.body.error.message ?? '').length > 10);
    }
  });
});

/** The SDK may add fields of its own to blocks (citations): compare on the fields the answer has. */
function strip(final: Anthropic.Message) {
  return (b: Record<string, unknown>) => {
    const got = final.content[0] as unknown as Record<string, unknown>;
    return Object.fromEntries(Object.keys(got).map((k) => [k, b[k] ?? got[k]]));
  };
}
