import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { request } from 'undici';
import { type FakeUpstream, startFakeUpstream, USAGE } from '../helpers/fake-protocols.js';
import { type Gw, startGateway } from './setup.js';

// The client is the official `openai` SDK's Responses API; the upstreams are the fake model
// servers of helpers/fake-protocols.ts (fixed answers, fixed usage, no model: see its limits).
describe('gateway: POST /v1/responses through the OpenAI SDK', () => {
  let local: FakeUpstream; // chat completions only (vLLM/Ollama stand-in): translated
  let native: FakeUpstream; // serves /responses itself: passed through
  let claude: FakeUpstream; // Anthropic: translated through the provider's chat transforms
  let broken: FakeUpstream;
  let gw: Gw;
  let key: string;
  let keyId: string;

  before(async () => {
    [local, native, claude, broken] = (await Promise.all(
      ['local', 'native', 'claude', 'broken'].map((n) => startFakeUpstream(n)),
    )) as [FakeUpstream, FakeUpstream, FakeUpstream, FakeUpstream];
    broken.status = 503;
    gw = await startGateway({
      providers: [
        { name: 'local', type: 'openai', baseUrl: local.url },
        { name: 'native', type: 'openai', baseUrl: native.url, responsesApi: true },
        { name: 'claude', type: 'anthropic', baseUrl: claude.origin },
        { name: 'broken', type: 'openai', baseUrl: broken.url },
      ],
      models: [
        { name: 'qwen', targets: [{ provider: 'local', model: 'qwen2.5:7b-q4' }] },
        { name: 'gpt', targets: [{ provider: 'native', model: 'gpt-4.1-mini' }] },
        { name: 'haiku', targets: [{ provider: 'claude', model: 'claude-3-5-haiku-latest' }] },
        {
          name: 'resilient',
          targets: [{ provider: 'broken', model: 'x' }],
          fallbacks: [{ provider: 'local', model: 'qwen2.5:7b-q4' }],
        },
      ],
    });
    ({ key, id: keyId } = await gw.createKey());
  });
  after(async () => {
    await gw.stop();
    await Promise.all([local, native, claude, broken].map((u) => u.close()));
  });

  const tools: OpenAI.Responses.Tool[] = [
    {
      type: 'function',
      name: 'get_weather',
      description: 'Weather in a city',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
      strict: true,
    },
  ];

  it('translated (chat-only upstream): text answer, client model name, upstream name in a header, usage', async () => {
    const { data, response } = await gw
      .client(key)
      .responses.create({ model: 'qwen', instructions: 'Be brief.', input: 'hi', max_output_tokens: 50 })
      .withResponse();
    assert.equal(data.object, 'response');
    assert.equal(data.status, 'completed');
    assert.equal(data.output_text, 'hello from local');
    assert.equal(data.model, 'qwen');
    assert.equal(data.usage?.input_tokens, USAGE.prompt_tokens);
    assert.equal(data.usage?.output_tokens, USAGE.completion_tokens);
    assert.equal(response.headers.get('x-kapok-upstream-model'), 'qwen2.5:7b-q4');
    assert.equal(response.headers.get('x-kapok-target'), 'local/qwen2.5:7b-q4');
    const sent = local.requests.at(-1);
    assert.equal(sent?.path, '/v1/chat/completions');
    assert.equal(sent?.body.model, 'qwen2.5:7b-q4');
    assert.deepEqual(sent?.body.messages, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'hi' },
    ]);
    assert.equal(sent?.body.max_completion_tokens, 50);
  });

  it('translated: function tools, then the tool output fed back as function_call_output', async () => {
    const client = gw.client(key);
    const first = await client.responses.create({ model: 'qwen', input: 'weather in Guangzhou?', tools });
    const call = first.output.find((o) => o.type === 'function_call');
    assert.ok(call && call.type === 'function_call', JSON.stringify(first.output));
    assert.equal(call.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.arguments), { city: 'Guangzhou' });
    assert.equal(call.call_id, 'call_1');
    const up = local.requests.at(-1)?.body;
    assert.deepEqual(up?.tools[0].function.name, 'get_weather');
    assert.equal(up?.tools[0].function.strict, true);

    const second = await client.responses.create({
      model: 'qwen',
      tools,
      input: [
        { role: 'user', content: 'weather in Guangzhou?' },
        { type: 'function_call', call_id: call.call_id, name: call.name, arguments: call.arguments },
        { type: 'function_call_output', call_id: call.call_id, output: '31°C, humid' },
      ],
    });
    assert.equal(second.output_text, 'hello from local');
    const msgs = local.requests.at(-1)?.body.messages;
    assert.equal(msgs[1].role, 'assistant');
    assert.equal(msgs[1].tool_calls[0].id, 'call_1');
    assert.deepEqual(msgs[2], { role: 'tool', tool_call_id: 'call_1', content: '31°C, humid' });
  });

  it('translated: images as image_url parts, structured output as response_format', async () => {
    const r = await gw.client(key).responses.create({
      model: 'qwen',
      input: [
        {
          role: 'user',
          content: [
            { type: 'input_text', text: 'where is this?' },
            { type: 'input_image', image_url: 'data:image/png;base64,iVBORw0KGgo=', detail: 'low' },
          ],
        },
      ],
      text: {
        format: {
          type: 'json_schema',
          name: 'place',
          schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
          strict: true,
        },
      },
    });
    assert.deepEqual(JSON.parse(r.output_text), { city: 'Guangzhou' });
    const up = local.requests.at(-1)?.body;
    assert.deepEqual(up?.messages[0].content[1], {
      type: 'image_url',
      image_url: { url: 'data:image/png;base64,iVBORw0KGgo=', detail: 'low' },
    });
    assert.equal(up?.response_format.type, 'json_schema');
    assert.equal(up?.response_format.json_schema.name, 'place');
    assert.equal(up?.response_format.json_schema.strict, true);
  });

  it('translated stream: typed events in order (the SDK stream helper checks them), usage at the end', async () => {
    const s = gw.client(key).responses.stream({ model: 'qwen', input: 'hi' });
    const types: string[] = [];
    const seqs: number[] = [];
    for await (const ev of s) {
      types.push(ev.type);
      seqs.push(ev.sequence_number);
    }
    const final = await s.finalResponse();
    assert.equal(final.output_text, 'hello from local');
    assert.equal(final.model, 'qwen');
    assert.equal(final.usage?.input_tokens, USAGE.prompt_tokens);
    assert.deepEqual(
      seqs,
      seqs.map((_, i) => i),
    );
    assert.deepEqual(
      types.filter((t) => !t.endsWith('.delta')),
      [
        'response.created',
        'response.in_progress',
        'response.output_item.added',
        'response.content_part.added',
        'response.output_text.done',
        'response.content_part.done',
        'response.output_item.done',
        'response.completed',
      ],
    );
    assert.equal(types.filter((t) => t === 'response.output_text.delta').length, 3);
    assert.equal(local.requests.at(-1)?.body.stream_options.include_usage, true);
  });

  it('translated stream with tools (create stream:true): function_call_arguments events', async () => {
    const s = await gw
      .client(key)
      .responses.create({ model: 'qwen', input: 'weather?', tools, stream: true });
    let args = '';
    let done: OpenAI.Responses.ResponseCompletedEvent | null = null;
    for await (const ev of s) {
      if (ev.type === 'response.function_call_arguments.delta') args += ev.delta;
      if (ev.type === 'response.completed') done = ev;
    }
    assert.equal(args, '{"city":"Guangzhou"}');
    const item = done?.response.output[0];
    assert.ok(item?.type === 'function_call');
    assert.equal(item.name, 'get_weather');
    assert.equal(item.arguments, '{"city":"Guangzhou"}');
  });

  it('Anthropic upstream: through the provider transforms, stream and not, tools included', async () => {
    const client = gw.client(key);
    const r = await client.responses.create({ model: 'haiku', input: 'hi', max_output_tokens: 100 });
    assert.equal(r.output_text, 'hello from claude');
    assert.equal(r.model, 'haiku');
    const up = claude.requests.at(-1);
    assert.equal(up?.path, '/v1/messages');
    assert.equal(up?.body.max_tokens, 100);
    const s = client.responses.stream({ model: 'haiku', input: 'weather?', tools });
    const final = await s.finalResponse();
    const call = final.output.find((o) => o.type === 'function_call');
    assert.ok(call?.type === 'function_call', JSON.stringify(final.output));
    assert.equal(call.call_id, 'toolu_1');
    assert.deepEqual(JSON.parse(call.arguments), { city: 'Guangzhou' });
    assert.equal(final.usage?.output_tokens, USAGE.completion_tokens);
  });

  it('native upstream: body passed through with the target model, answer renamed, stream relayed', async () => {
    const client = gw.client(key);
    const r = await client.responses.create({ model: 'gpt', input: 'hi', store: false });
    assert.equal(r.output_text, 'hello from native');
    assert.equal(r.model, 'gpt');
    const up = native.requests.at(-1);
    assert.equal(up?.path, '/v1/responses');
    assert.deepEqual(up?.body, { model: 'gpt-4.1-mini', input: 'hi', store: false });
    const s = client.responses.stream({ model: 'gpt', input: 'weather?', tools });
    const final = await s.finalResponse();
    assert.equal(final.model, 'gpt');
    assert.equal(final.output[0]?.type, 'function_call');
    assert.equal(native.requests.at(-1)?.body.stream, true);
  });

  it('fallback: the failing target is skipped and the fallback answers, stream and not', async () => {
    const client = gw.client(key);
    const before = broken.requests.length;
    const r = await client.responses.create({ model: 'resilient', input: 'hi' });
    assert.equal(r.output_text, 'hello from local');
    const final = await client.responses.stream({ model: 'resilient', input: 'hi' }).finalResponse();
    assert.equal(final.output_text, 'hello from local');
    assert.equal(broken.requests.length, before + 2);
  });

  it('stream cut after data went out: ends with an error event, never response.completed', async () => {
    local.cut = true;
    try {
      const s = await gw.client(key).responses.create({ model: 'qwen', input: 'hi', stream: true });
      const types: string[] = [];
      let err: OpenAI.Responses.ResponseErrorEvent | null = null;
      for await (const ev of s) {
        types.push(ev.type);
        if (ev.type === 'error') err = ev;
      }
      assert.ok(types.includes('response.output_text.delta'));
      assert.ok(!types.includes('response.completed'));
      assert.equal(types.at(-1), 'error');
      assert.equal(err?.code, 'KAPOK_GATEWAY_STREAM_INTERRUPTED');
    } finally {
      local.cut = false;
    }
    native.cut = true;
    try {
      const s = await gw.client(key).responses.create({ model: 'gpt', input: 'hi', stream: true });
      const types: string[] = [];
      for await (const ev of s) types.push(ev.type);
      assert.equal(types.at(-1), 'error');
      assert.ok(!types.includes('response.completed'));
    } finally {
      native.cut = false;
    }
  });

  it('usage is recorded per call with the upstream figures', async () => {
    const deadline = Date.now() + 3000;
    let rows: Array<{ group: string; requests: number; prompt_tokens: number }> = [];
    while (Date.now() < deadline) {
      rows = (await gw.admin('GET', `/usage?key=${keyId}&groupBy=model`)).body.rows;
      if (rows.find((r) => r.group === 'gpt')?.requests === 3) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const gpt = rows.find((r) => r.group === 'gpt');
    // An answer and a completed stream report the fake's usage; the cut stream is charged an estimate.
    assert.equal(gpt?.requests, 3);
    assert.ok((gpt?.prompt_tokens ?? 0) > 2 * USAGE.prompt_tokens);
    const metrics = await (await request(`${gw.base}/metrics`)).body.text();
    assert.match(metrics, /kapok_gateway_requests_total\{endpoint="responses",model="qwen"/);
  });

  it('bad input, wrong keys and spent quotas get clear errors', async () => {
    const post = async (body: unknown, headers: Record<string, string> = {}) => {
      const res = await request(`${gw.base}/v1/responses`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
      return { status: res.statusCode, body: (await res.body.json()) as { error: Record<string, string> } };
    };
    const wrong = await post({ model: 'qwen', input: 'hi' }, { authorization: 'Bearer kpk_wrong' });
    assert.equal(wrong.status, 401);
    const sdk = new OpenAI({ apiKey: 'nope', baseURL: `${gw.base}/v1`, maxRetries: 0 });
    await assert.rejects(sdk.responses.create({ model: 'qwen', input: 'hi' }), OpenAI.AuthenticationError);
    const cases: Array<[unknown, number, string, string | null]> = [
      [{ model: 'qwen' }, 400, 'KAPOK_GATEWAY_BAD_REQUEST', 'input'],
      [{ model: 'qwen', input: [] }, 400, 'KAPOK_GATEWAY_BAD_REQUEST', 'input'],
      [{ model: 'qwen', input: 42 }, 400, 'KAPOK_GATEWAY_BAD_REQUEST', 'input'],
      [[1, 2], 400, 'KAPOK_GATEWAY_BAD_REQUEST', 'body'],
      [
        { model: 'qwen', input: 'hi', previous_response_id: 'resp_1' },
        400,
        'KAPOK_GATEWAY_BAD_REQUEST',
        'previous_response_id',
      ],
      [
        { model: 'qwen', input: [{ type: 'web_search_call' }] },
        400,
        'KAPOK_GATEWAY_BAD_REQUEST',
        'input[0].type',
      ],
      [
        { model: 'qwen', input: 'hi', tools: [{ type: 'web_search' }] },
        400,
        'KAPOK_GATEWAY_BAD_REQUEST',
        'tools[0]',
      ],
      [
        { model: 'qwen', input: 'hi', max_output_tokens: -1 },
        400,
        'KAPOK_GATEWAY_BAD_REQUEST',
        'max_output_tokens',
      ],
      [
        { model: 'qwen', input: 'hi', text: { format: { type: 'yaml' } } },
        400,
        'KAPOK_GATEWAY_BAD_REQUEST',
        'text.format.type',
      ],
      [
        { model: 'qwen', input: Array(10_001).fill({ role: 'user', content: 'x' }) },
        400,
        'KAPOK_GATEWAY_BAD_REQUEST',
        'input',
      ],
      [{ model: 'nope', input: 'hi' }, 404, 'KAPOK_GATEWAY_MODEL_NOT_FOUND', 'model'],
      ['{"model":"qwen","input":', 400, 'KAPOK_HTTP_BAD_REQUEST', null],
    ];
    for (const [body, status, code, param] of cases) {
      const r = await post(body);
      assert.equal(r.status, status, JSON.stringify(r.body));
      assert.equal(r.body.error.code, code);
      if (param) assert.equal(r.body.error.param, param);
      assert.ok((r.body.error.message ?? '').length > 10);
    }
    // The hostile model name is not echoed back.
    const hostile = await post({ model: '<script>x</script>', input: 'hi' });
    assert.ok(!String(hostile.body.error.message).includes('<script>'));
    // Quotas are those of chat completions: a key with rpm 1 gets its second request refused.
    const limited = gw.client((await gw.createKey({ rpm: 1 })).key);
    await limited.responses.create({ model: 'qwen', input: 'a' });
    await assert.rejects(limited.responses.create({ model: 'qwen', input: 'a' }), OpenAI.RateLimitError);
    // A native-only model passes items it cannot translate through to the upstream.
    const passed = await post({ model: 'gpt', input: 'hi', previous_response_id: 'resp_1' });
    assert.equal(passed.status, 200);
  });
});
