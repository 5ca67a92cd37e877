import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';
import { configSchema, loadKapokConfig } from '../../src/config.js';
import { redact } from '../../src/core/config/index.js';
import { anthropicProvider } from '../../src/gateway/providers/anthropic/index.js';
import { openaiProvider } from '../../src/gateway/providers/openai/index.js';
import { MAX_EVENT_BYTES, SseParser } from '../../src/gateway/proxy/sse.js';
import { fmtDuration } from '../../src/gateway/quota/service.js';
import { Circuit } from '../../src/gateway/routing/circuit.js';
import {
  estimateTokens,
  loadTokenCounter,
  MAX_EXACT_CHARS,
  tokenizerFor,
} from '../../src/gateway/routing/tokens.js';
import { testConfig } from '../helpers/config.js';
import { tmpFile } from '../helpers/tmp.js';

const enc = (s: string) => new TextEncoder().encode(s);

describe('gateway config', () => {
  const base = {
    enabled: true,
    providers: [{ name: 'a', type: 'openai', baseUrl: 'http://127.0.0.1:1/v1' }],
    models: [{ name: 'm', targets: [{ provider: 'a', model: 'x' }] }],
  };
  const issues = (gateway: unknown) => {
    const r = configSchema.safeParse({ gateway });
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('accepts the issue example shape and fills defaults', () => {
    const c = testConfig({ gateway: base });
    assert.equal(c.gateway.providers[0]?.timeoutMs, 60_000);
    assert.equal(c.gateway.models[0]?.targets[0]?.weight, 1);
    assert.equal(c.gateway.preference.header, 'X-Model-Preference');
  });

  it('names the key of each cross-reference mistake', () => {
    assert.match(
      issues({ ...base, models: [{ name: 'm', targets: [{ provider: 'nope', model: 'x' }] }] }).join(),
      /models\.0\.targets\.0\.provider: names provider nope/,
    );
    assert.match(
      issues({ ...base, providers: [...base.providers, ...base.providers] }).join(),
      /providers\.1\.name: duplicate provider a/,
    );
    assert.match(
      issues({ ...base, preference: { allowed: ['zzz'] } }).join(),
      /preference\.allowed\.0: names model zzz/,
    );
    assert.match(
      issues({
        ...base,
        models: [{ name: 'm', targets: [{ provider: 'a', model: 'x', weight: 0 }] }],
      }).join(),
      /weight > 0/,
    );
    assert.match(
      issues({ ...base, providers: [{ name: 'a b', type: 'openai', baseUrl: 'http://x' }] }).join(),
      /providers\.0\.name/,
    );
    assert.match(
      issues({ ...base, providers: [{ name: 'a', type: 'openai', baseUrl: 'ftp://x' }] }).join(),
      /baseUrl/,
    );
    assert.match(issues({ ...base, auth: { apiKeys: false } }).join(), /no way to authenticate/);
  });

  it('apiKeyEnv is resolved at load; keys and admin token are secrets in `config print`', () => {
    const file = tmpFile(
      'kapok.yaml',
      `gateway:\n  providers: [{ name: a, type: openai, baseUrl: "http://h/v1", apiKeyEnv: UP_KEY }]\n  auth: { adminToken: "0123456789abcdef-admin" }\n`,
    );
    const loaded = loadKapokConfig({ file, env: { UP_KEY: 'sk-upstream-secret' } });
    assert.equal(loaded.config.gateway.providers[0]?.apiKey, 'sk-upstream-secret');
    const shown = JSON.stringify(redact(configSchema, loaded.config));
    assert.ok(!shown.includes('sk-upstream-secret') && !shown.includes('0123456789abcdef-admin'), shown);
    assert.match(shown, /"apiKey":"\*\*\*"/);
    assert.match(shown, /"adminToken":"\*\*\*"/);
  });
});

describe('SSE parser', () => {
  it('handles events split anywhere, CRLF, multi-line data, comments and split UTF-8', () => {
    const text =
      ': comment\r\nevent: a\r\ndata: {"x":"广州"}\r\n\r\ndata: line1\ndata: line2\n\ndata: [DONE]\n\n';
    const bytes = enc(text);
    for (let cut = 1; cut < bytes.length; cut++) {
      const p = new SseParser();
      const evs = [...p.push(bytes.subarray(0, cut)), ...p.push(bytes.subarray(cut))];
      assert.deepEqual(
        evs,
        [
          { event: 'a', data: '{"x":"广州"}' },
          { event: undefined, data: 'line1\nline2' },
          { event: undefined, data: '[DONE]' },
        ],
        `cut at ${cut}`,
      );
      assert.equal(p.hasPartial, false);
    }
  });

  it('refuses an event larger than the limit instead of buffering it', () => {
    const p = new SseParser();
    assert.throws(() => {
      for (let i = 0; i < 5; i++) p.push(enc(`data: ${'x'.repeat(MAX_EVENT_BYTES / 4)}\n`));
    }, /larger than/);
  });
});

describe('provider transforms', () => {
  it('openai: sets the target model and asks for stream usage, keeping other fields', () => {
    const r = openaiProvider.chatRequest(
      {
        model: 'qwen',
        messages: [{ role: 'user', content: 'x' }],
        stream: true,
        temperature: 0.2,
        stream_options: { include_usage: false },
      },
      'Qwen2.5',
    );
    assert.deepEqual(JSON.parse(r.body), {
      model: 'Qwen2.5',
      messages: [{ role: 'user', content: 'x' }],
      stream: true,
      temperature: 0.2,
      stream_options: { include_usage: true },
    });
  });

  it('openai: reads error bodies of OpenAI, Ollama and plain-text shapes', () => {
    assert.deepEqual(
      openaiProvider.errorInfo(
        '{"error":{"message":"too long","type":"invalid_request_error","code":"context_length_exceeded","param":"messages"}}',
      ),
      {
        message: 'too long',
        type: 'invalid_request_error',
        code: 'context_length_exceeded',
        param: 'messages',
      },
    );
    assert.deepEqual(openaiProvider.errorInfo('{"error":"model not found"}'), { message: 'model not found' });
    assert.deepEqual(openaiProvider.errorInfo('Bad Gateway'), { message: 'Bad Gateway' });
    assert.equal(openaiProvider.errorInfo(''), null);
    assert.ok((openaiProvider.errorInfo('x'.repeat(5000))?.message.length ?? 0) <= 1001);
  });

  it('anthropic: merges system prompts, alternates roles, maps tool calls and results', () => {
    const r = anthropicProvider.chatRequest(
      {
        model: 'haiku',
        messages: [
          { role: 'system', content: 'a' },
          { role: 'developer', content: [{ type: 'text', text: 'b' }] },
          { role: 'user', content: 'q1' },
          {
            role: 'user',
            content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }],
          },
          {
            role: 'assistant',
            content: null,
            tool_calls: [{ id: 't1', type: 'function', function: { name: 'f', arguments: '{"k":1}' } }],
          },
          { role: 'tool', tool_call_id: 't1', content: 'result' },
        ],
        stop: 'END',
        tool_choice: 'required',
        tools: [
          { type: 'function', function: { name: 'f', description: 'd', parameters: { type: 'object' } } },
        ],
      },
      'claude-x',
    );
    const b = JSON.parse(r.body);
    assert.equal(b.system, 'a\n\nb');
    assert.equal(b.max_tokens, 4096);
    assert.deepEqual(b.stop_sequences, ['END']);
    assert.deepEqual(b.tool_choice, { type: 'any' });
    assert.deepEqual(b.tools, [{ name: 'f', description: 'd', input_schema: { type: 'object' } }]);
    assert.deepEqual(
      b.messages.map((m: { role: string }) => m.role),
      ['user', 'assistant', 'user'],
    );
    assert.equal(b.messages[0].content[1].source.media_type, 'image/png');
    assert.deepEqual(b.messages[1].content, [{ type: 'tool_use', id: 't1', name: 'f', input: { k: 1 } }]);
    assert.deepEqual(b.messages[2].content, [{ type: 'tool_result', tool_use_id: 't1', content: 'result' }]);
  });

  it('anthropic: bad tool-call arguments and unknown roles are 400s naming the param', () => {
    const bad = (messages: unknown[]) => () =>
      anthropicProvider.chatRequest({ model: 'm', messages: messages as never }, 'x');
    assert.throws(
      bad([
        {
          role: 'assistant',
          tool_calls: [{ id: 't', type: 'function', function: { name: 'f', arguments: '{' } }],
        },
      ]),
      (e: Error & { details?: { param?: string } }) =>
        e.details?.param === 'messages[0].tool_calls[0].function.arguments',
    );
    assert.throws(bad([{ role: 'wizard', content: 'x' }]), /messages\[0\]\.role/);
  });

  it('anthropic stream: a mid-stream error event is reported, not swallowed', () => {
    const tr = anthropicProvider.chatStream({ includeUsage: false, clientModel: 'm' });
    tr.push({
      event: 'message_start',
      data: '{"type":"message_start","message":{"id":"x","usage":{"input_tokens":3}}}',
    });
    const step = tr.push({
      event: 'error',
      data: '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
    });
    assert.equal(step.error, 'Overloaded');
  });
});

describe('circuit breaker', () => {
  it('opens at the threshold, lets exactly one probe through after the cool-down, closes on success', () => {
    let now = 0;
    const changes: string[] = [];
    const c = new Circuit({
      failureThreshold: 3,
      cooldownMs: 1000,
      now: () => now,
      onChange: (s) => changes.push(s),
    });
    c.failure();
    c.failure();
    assert.equal(c.state, 'closed');
    c.failure();
    assert.equal(c.state, 'open');
    assert.equal(c.tryAcquire(), false);
    now = 1000;
    assert.equal(c.state, 'half_open');
    assert.equal(c.tryAcquire(), true);
    assert.equal(c.tryAcquire(), false, 'one probe at a time');
    c.failure();
    assert.equal(c.state, 'open', 'a failed probe reopens');
    now = 2000;
    assert.equal(c.tryAcquire(), true);
    c.success();
    assert.equal(c.state, 'closed');
    assert.deepEqual(changes, ['open', 'half_open', 'open', 'half_open', 'closed']);
  });
});

describe('token counting', () => {
  it('counts chat prompts with a real tokenizer, special-token text included', async () => {
    const t = await loadTokenCounter('o200k');
    assert.equal(t.text('hello world'), 2);
    // "<|endoftext|>" in a prompt is ordinary text, not a control token (and must not throw).
    assert.ok(t.text('a <|endoftext|> b') > 3);
    const chat = t.chat({ model: 'm', messages: [{ role: 'user', content: 'hello world' }] });
    assert.equal(chat, 2 + 3 + 3);
    // o200k's larger vocabulary needs fewer tokens for Chinese than cl100k.
    const cl = await loadTokenCounter('cl100k');
    const zh = '广州木棉花开了，交通信号灯';
    assert.ok(cl.text(zh) > t.text(zh), `${cl.text(zh)} vs ${t.text(zh)}`);
  });

  it('extrapolates past MAX_EXACT_CHARS within 2% of the exact count', async () => {
    const t = await loadTokenCounter('o200k');
    const words = ['gateway', 'token', '广州', 'quota', 'stream', '木棉', 'latency', 'route'];
    let s = '';
    for (let i = 0; s.length < 4 * MAX_EXACT_CHARS; i++) s += `${words[(i * 7) % words.length]}${i % 13} `;
    const exact = countTokens(s, { disallowedSpecial: new Set() });
    const est = t.text(s);
    assert.ok(Math.abs(est - exact) / exact < 0.02, `estimate ${est}, exact ${exact}`);
  });

  it('loads rank tables only for models that need exact counts (degrade, or a tokenizer set)', () => {
    assert.equal(tokenizerFor({ degrade: null }), 'estimate');
    assert.equal(tokenizerFor({ degrade: { aboveTokens: 10 } }), 'o200k');
    assert.equal(tokenizerFor({ tokenizer: 'cl100k', degrade: null }), 'cl100k');
    assert.equal(tokenizerFor({ tokenizer: 'estimate', degrade: { aboveTokens: 10 } }), 'estimate');
    const models = (extra: object) => ({
      gateway: {
        providers: [{ name: 'a', type: 'openai', baseUrl: 'http://127.0.0.1:1/v1' }],
        models: [{ name: 'm', targets: [{ provider: 'a', model: 'x' }], ...extra }],
      },
    });
    const parsed = configSchema.parse(models({ tokenizer: 'estimate' }));
    assert.equal(parsed.gateway.models[0]?.tokenizer, 'estimate');
    assert.equal(configSchema.parse(models({})).gateway.models[0]?.tokenizer, undefined);
    assert.equal(configSchema.safeParse(models({ tokenizer: 'gpt2' })).success, false);
  });

  it('estimates without rank tables: near the exact count for English, high for Chinese', async () => {
    const exact = await loadTokenCounter('o200k');
    const est = await loadTokenCounter('estimate');
    assert.equal(estimateTokens(''), 0);
    assert.equal(estimateTokens('hello world'), 3);
    const en = 'The gateway reserves quota before the call and settles it to the real usage after. '.repeat(
      20,
    );
    const ratio = est.text(en) / exact.text(en);
    assert.ok(ratio > 0.7 && ratio < 1.5, `English estimate/exact ${ratio}`);
    const zh = '广州木棉花开了，交通信号灯在路口闪烁。'.repeat(20);
    assert.ok(est.text(zh) >= exact.text(zh), `${est.text(zh)} vs exact ${exact.text(zh)}`);
    // Chat framing is the same as the exact counter's: 3 per message + 3 priming.
    assert.equal(est.chat({ model: 'm', messages: [{ role: 'user', content: 'hello world' }] }), 3 + 3 + 3);
    assert.equal(est.embeddings({ model: 'm', input: ['abcd', 'abcdefgh'] }), 1 + 2);
    assert.equal(est.embeddings({ model: 'm', input: [[1, 2, 3]] }), 3);
  });
});

describe('reset durations', () => {
  it('formats like OpenAI', () => {
    assert.deepEqual(
      [fmtDuration(20), fmtDuration(1500), fmtDuration(59_940), fmtDuration(360_000)],
      ['20ms', '1.5s', '59.9s', '6m0s'],
    );
  });
});
