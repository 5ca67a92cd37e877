import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { request } from 'undici';
import { gatewaySchema } from '../../src/gateway/config.js';
import { renameModel } from '../../src/gateway/providers/model-name.js';
import { type FakeUpstream, startFakeUpstream, USAGE } from '../helpers/fake-protocols.js';
import { type Gw, startGateway } from './setup.js';

describe('renameModel: the client-facing model name in upstream bytes', () => {
  it('replaces the first "model" key value only, spaces and escapes included', () => {
    assert.equal(
      renameModel('{"id":"x","model":"qwen2.5:7b-q4","n":1}', 'qwen'),
      '{"id":"x","model":"qwen","n":1}',
    );
    assert.equal(
      renameModel('{"model" : "a\\"b", "x":{"model":"c"}}', 'm'),
      '{"model" : "m", "x":{"model":"c"}}',
    );
    // A string value "model" (Gemini's role) is not a key; the key after it is.
    assert.equal(renameModel('{"role":"model","model":"g"}', 'm'), '{"role":"model","model":"m"}');
    // Content that mentions "model" is escaped inside its string and never matched.
    const content = JSON.stringify({ content: '{"model":"evil"}', model: 'up' });
    assert.equal(JSON.parse(renameModel(content, 'mine')).content, '{"model":"evil"}');
    assert.equal(JSON.parse(renameModel(content, 'mine')).model, 'mine');
    assert.equal(renameModel('{"model":null}', 'm'), '{"model":null}');
    assert.equal(renameModel('{"no":"key"}', 'm'), '{"no":"key"}');
    assert.equal(renameModel('{"model":"unterminated', 'm'), '{"model":"unterminated');
    assert.equal(renameModel('{"model":"x"}', 'a"b'), '{"model":"a\\"b"}');
  });
});

describe('gateway config: providers[].responsesApi', () => {
  it('is refused on a non-openai provider, with its key path', () => {
    const r = gatewaySchema.safeParse({
      providers: [{ name: 'c', type: 'anthropic', baseUrl: 'https://api.anthropic.com', responsesApi: true }],
    });
    assert.equal(r.success, false);
    assert.deepEqual(r.error?.issues[0]?.path, ['providers', 0, 'responsesApi']);
    assert.match(r.error?.issues[0]?.message ?? '', /only openai-type upstreams/);
    const ok = gatewaySchema.parse({ providers: [{ name: 'o', type: 'openai', baseUrl: 'http://h/v1' }] });
    assert.equal(ok.providers[0]?.responsesApi, false);
    assert.equal(ok.exposeUpstreamModel, false);
  });
});

// Upstreams: the fakes of helpers/fake-protocols.ts (fixed answers and usage, no model).
describe('gateway: /v1/completions, GET /v1/models/{id}, client-facing model names', () => {
  let local: FakeUpstream;
  let claude: FakeUpstream;
  let gw: Gw;
  let exposed: Gw;
  let key: string;

  before(async () => {
    [local, claude] = await Promise.all([startFakeUpstream('local'), startFakeUpstream('claude')]);
    const gateway = {
      providers: [
        { name: 'local', type: 'openai', baseUrl: local.url },
        { name: 'claude', type: 'anthropic', baseUrl: claude.origin },
      ],
      models: [
        { name: 'qwen', targets: [{ provider: 'local', model: 'qwen2.5:7b-q4' }] },
        { name: 'haiku', targets: [{ provider: 'claude', model: 'claude-3-5-haiku-latest' }] },
      ],
    };
    gw = await startGateway(gateway);
    exposed = await startGateway({ ...gateway, exposeUpstreamModel: true });
    key = (await gw.createKey()).key;
  });
  after(async () => {
    await Promise.all([gw.stop(), exposed.stop()]);
    await Promise.all([local.close(), claude.close()]);
  });

  it('completions pass through with the target model, stream and not; usage chunk only when asked', async () => {
    const c = gw.client(key);
    const r = await c.completions.create({ model: 'qwen', prompt: 'say', max_tokens: 5 });
    assert.equal(r.choices[0]?.text, ' from local');
    assert.equal(r.model, 'qwen');
    assert.equal(r.usage?.prompt_tokens, USAGE.prompt_tokens);
    const up = local.requests.at(-1);
    assert.equal(up?.path, '/v1/completions');
    assert.deepEqual(up?.body, { model: 'qwen2.5:7b-q4', prompt: 'say', max_tokens: 5 });
    let text = '';
    let usage = 0;
    for await (const ch of await c.completions.create({ model: 'qwen', prompt: 'say', stream: true })) {
      text += ch.choices[0]?.text ?? '';
      assert.equal(ch.model, 'qwen');
      if (ch.usage) usage++;
    }
    assert.equal(text, ' from local');
    assert.equal(usage, 0);
    assert.equal(local.requests.at(-1)?.body.stream_options.include_usage, true);
  });

  it('completions on a model with no OpenAI-compatible upstream, or a bad prompt: clear 400s', async () => {
    const post = async (body: unknown) => {
      const res = await request(`${gw.base}/v1/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: res.statusCode, body: (await res.body.json()) as { error: Record<string, string> } };
    };
    const none = await post({ model: 'haiku', prompt: 'x' });
    assert.equal(none.status, 400);
    assert.equal(none.body.error.code, 'KAPOK_GATEWAY_UNSUPPORTED');
    for (const prompt of [undefined, '', [], [1, 'a'], { a: 1 }]) {
      const r = await post({ model: 'qwen', prompt });
      assert.equal(r.status, 400);
      assert.equal(r.body.error.param, 'prompt');
    }
    const neg = await post({ model: 'qwen', prompt: 'x', max_tokens: 0 });
    assert.equal(neg.body.error.param, 'max_tokens');
    const wrong = new OpenAI({ apiKey: 'kpk_nope', baseURL: `${gw.base}/v1`, maxRetries: 0 });
    await assert.rejects(
      wrong.completions.create({ model: 'qwen', prompt: 'x' }),
      OpenAI.AuthenticationError,
    );
  });

  it('GET /v1/models/{id}: the model, 404 for unknown, 403 for a key limited to others, 401 without a key', async () => {
    const m = await gw.client(key).models.retrieve('qwen');
    assert.deepEqual(
      { id: m.id, object: m.object, owned_by: m.owned_by },
      { id: 'qwen', object: 'model', owned_by: 'kapok' },
    );
    await assert.rejects(gw.client(key).models.retrieve('nope'), OpenAI.NotFoundError);
    const limited = (await gw.createKey({ models: ['haiku'] })).key;
    await assert.rejects(gw.client(limited).models.retrieve('qwen'), OpenAI.PermissionDeniedError);
    const res = await request(`${gw.base}/v1/models/qwen`);
    assert.equal(res.statusCode, 401);
    assert.equal(
      ((await res.body.json()) as { error: { code: string } }).error.code,
      'KAPOK_GATEWAY_AUTH_MISSING',
    );
  });

  it('chat answers carry the client model name by default, the upstream one with exposeUpstreamModel', async () => {
    const body = { model: 'qwen', messages: [{ role: 'user' as const, content: 'hi' }] };
    const { data, response } = await gw.client(key).chat.completions.create(body).withResponse();
    assert.equal(data.model, 'qwen');
    assert.equal(response.headers.get('x-kapok-upstream-model'), 'qwen2.5:7b-q4');
    for await (const ch of await gw.client(key).chat.completions.create({ ...body, stream: true }))
      assert.equal(ch.model, 'qwen');
    const emb = await gw.client(key).embeddings.create({ model: 'qwen', input: 'x' });
    assert.equal(emb.model, 'qwen');
    const k2 = (await exposed.createKey()).key;
    assert.equal((await exposed.client(k2).chat.completions.create(body)).model, 'qwen2.5:7b-q4');
    const r = await exposed.client(k2).responses.create({ model: 'haiku', input: 'hi' });
    assert.equal(r.model, 'claude-3-5-haiku-latest');
  });
});
