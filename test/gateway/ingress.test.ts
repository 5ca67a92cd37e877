import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KapokError } from '../../src/core/errors.js';
import { passthroughMessagesStream } from '../../src/gateway/ingress/messages/passthrough.js';
import { messagesToChat, validateMessages } from '../../src/gateway/ingress/messages/request.js';
import { chatToMessage, toolInput } from '../../src/gateway/ingress/messages/response.js';
import { chatToMessagesStream } from '../../src/gateway/ingress/messages/stream.js';
import { passthroughResponsesStream } from '../../src/gateway/ingress/responses/passthrough.js';
import { toChatRequest, validateResponses } from '../../src/gateway/ingress/responses/request.js';
import { fromChatCompletion } from '../../src/gateway/ingress/responses/response.js';
import { chatToResponsesStream } from '../../src/gateway/ingress/responses/stream.js';
import { openaiProvider } from '../../src/gateway/providers/openai/index.js';

const chunk = (delta: object, finish: string | null = null) => ({
  event: undefined,
  data: JSON.stringify({
    id: 'c',
    object: 'chat.completion.chunk',
    model: 'up',
    choices: [{ index: 0, delta, finish_reason: finish }],
  }),
});
const usageChunk = {
  event: undefined,
  data: JSON.stringify({
    id: 'c',
    choices: [],
    usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 },
  }),
};
const DONE = { event: undefined, data: '[DONE]' };
const inner = () => openaiProvider.chatStream({ includeUsage: false, clientModel: 'm' });
const events = (frames: string[]) =>
  frames.map((f) => {
    const [head, data] = f.split('\ndata: ') as [string, string];
    return { type: head.replace('event: ', ''), data: JSON.parse(data) };
  });
const rejects400 = (f: () => unknown, param: string) =>
  assert.throws(f, (e: unknown) => e instanceof KapokError && e.status === 400 && e.details?.param === param);

describe('Responses ↔ chat completions translation', () => {
  it('merges consecutive function calls into one assistant turn; drops reasoning; keeps order', () => {
    const chat = toChatRequest(
      validateResponses({
        model: 'm',
        input: [
          { role: 'user', content: 'go' },
          { type: 'reasoning', summary: [] },
          { type: 'function_call', call_id: 'a', name: 'f', arguments: '{}' },
          { type: 'function_call', call_id: 'b', name: 'g', arguments: '{"x":1}' },
          { type: 'function_call_output', call_id: 'a', output: 'A' },
          { type: 'function_call_output', call_id: 'b', output: [{ type: 'input_text', text: 'B' }] },
          { role: 'assistant', content: [{ type: 'output_text', text: 'done' }] },
        ],
        top_logprobs: 2,
      }),
      false,
    );
    assert.deepEqual(
      chat.messages.map((m) => [m.role, m.tool_calls?.map((c) => c.id) ?? m.content]),
      [
        ['user', 'go'],
        ['assistant', ['a', 'b']],
        ['tool', 'A'],
        ['tool', 'B'],
        ['assistant', 'done'],
      ],
    );
    assert.equal(chat.logprobs, true);
    assert.equal(chat.top_logprobs, 2);
  });

  it('refuses what it cannot translate, naming the field', () => {
    const base = { model: 'm', input: 'x' };
    rejects400(() => toChatRequest(validateResponses({ ...base, conversation: 'c' }), false), 'conversation');
    rejects400(
      () =>
        toChatRequest(
          validateResponses({
            ...base,
            input: [{ role: 'user', content: [{ type: 'input_file', file_id: 'f' }] }],
          }),
          false,
        ),
      'input[0].content[0].type',
    );
    rejects400(
      () =>
        toChatRequest(
          validateResponses({
            ...base,
            input: [{ role: 'user', content: [{ type: 'input_image', file_id: 'f' }] }],
          }),
          false,
        ),
      'input[0].content[0].image_url',
    );
    rejects400(
      () => toChatRequest(validateResponses({ ...base, input: [{ role: 'tool', content: 'x' }] }), false),
      'input[0].role',
    );
    rejects400(
      () =>
        toChatRequest(
          validateResponses({ ...base, tool_choice: 'sometimes', tools: [{ type: 'function', name: 'f' }] }),
          false,
        ),
      'tool_choice',
    );
    rejects400(() => validateResponses({ ...base, instructions: 5 }), 'instructions');
    rejects400(() => validateResponses({ ...base, stream: 'yes' }), 'stream');
    rejects400(() => validateResponses({ ...base, input: ['x'] }), 'input[0]');
  });

  it('a length stop is an incomplete response; refusals and tool calls become their own parts/items', () => {
    const chat = {
      body: JSON.stringify({
        created: 5,
        choices: [
          {
            message: {
              content: 'partial',
              refusal: 'no',
              tool_calls: [{ id: 'c1', function: { name: 'f', arguments: '{}' } }],
            },
            finish_reason: 'length',
          },
        ],
        usage: {
          prompt_tokens: 3,
          completion_tokens: 4,
          total_tokens: 7,
          prompt_tokens_details: { cached_tokens: 2 },
        },
      }),
      usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 },
    };
    const r = JSON.parse(fromChatCompletion(chat, { model: 'x', input: 'hi' }, 'client').body);
    assert.equal(r.status, 'incomplete');
    assert.deepEqual(r.incomplete_details, { reason: 'max_output_tokens' });
    assert.deepEqual(
      r.output[0].content.map((c: { type: string }) => c.type),
      ['output_text', 'refusal'],
    );
    assert.equal(r.output[1].type, 'function_call');
    assert.equal(r.usage.input_tokens_details.cached_tokens, 2);
    assert.equal(r.model, 'client');
  });

  it('stream: nothing before the first content (so a failing attempt can still be retried), then ordered events', () => {
    const s = chatToResponsesStream(inner(), { model: 'x', input: 'hi' }, 'client');
    assert.deepEqual(s.push(chunk({ role: 'assistant', content: '' })).out, []);
    const err = s.push({ event: 'error', data: '{"error":{"message":"boom"}}' });
    assert.equal(err.error, 'boom');
    const s2 = chatToResponsesStream(inner(), { model: 'x', input: 'hi' }, 'client');
    const out = [
      ...s2.push(chunk({ content: 'He' })).out,
      ...s2.push(chunk({ tool_calls: [{ index: 0, id: 'c1', function: { name: 'f', arguments: '{"a"' } }] }))
        .out,
      ...s2.push(chunk({ tool_calls: [{ index: 0, function: { arguments: ':1}' } }] }, 'tool_calls')).out,
      ...s2.push(usageChunk).out,
    ];
    const end = s2.push(DONE);
    assert.equal(end.done, true);
    assert.equal(end.usage?.total_tokens, 7);
    const evs = events([...out, ...end.out]);
    assert.deepEqual(
      evs.map((e) => e.data.sequence_number),
      evs.map((_, i) => i),
    );
    const completed = evs.at(-1)?.data;
    assert.equal(completed.type, 'response.completed');
    assert.equal(completed.response.output[0].content[0].text, 'He');
    assert.equal(completed.response.output[1].arguments, '{"a":1}');
    assert.equal(completed.response.usage.output_tokens, 2);
    const cut = events([s2.cut('gone')])[0];
    assert.equal(cut?.type, 'error');
    assert.equal(cut?.data.sequence_number, evs.length);
  });

  it('pass-through stream: deltas relayed as bytes, usage from the terminal event, error events reported', () => {
    const s = passthroughResponsesStream((t) => t.replace('"up"', '"client"'));
    const delta = {
      event: 'response.output_text.delta',
      data: '{"type":"response.output_text.delta","delta":"x"}',
    };
    assert.deepEqual(s.push(delta).out, [`event: response.output_text.delta\ndata: ${delta.data}\n\n`]);
    const done = s.push({
      event: undefined,
      data: '{"type":"response.completed","response":{"model":"up","usage":{"input_tokens":4,"output_tokens":6}}}',
    });
    assert.equal(done.done, true);
    assert.deepEqual(done.usage, { prompt_tokens: 4, completion_tokens: 6, total_tokens: 10 });
    assert.match(done.out[0] ?? '', /"model":"client"/);
    assert.equal(s.push({ event: 'error', data: '{"type":"error","message":"rate"}' }).error, 'rate');
  });
});

describe('Anthropic Messages ↔ chat completions translation', () => {
  it('tool results go ahead of the rest of their user turn; is_error marked; thinking dropped', () => {
    const chat = messagesToChat(
      validateMessages({
        model: 'm',
        max_tokens: 10,
        system: [{ type: 'text', text: 'sys' }],
        messages: [
          { role: 'user', content: 'q' },
          {
            role: 'assistant',
            content: [
              { type: 'thinking', thinking: 'hmm' },
              { type: 'text', text: 'calling' },
              { type: 'tool_use', id: 't1', name: 'f', input: { a: 1 } },
            ],
          },
          {
            role: 'user',
            content: [
              { type: 'text', text: 'and also' },
              {
                type: 'tool_result',
                tool_use_id: 't1',
                content: [{ type: 'text', text: 'bad' }],
                is_error: true,
              },
            ],
          },
        ],
        tool_choice: { type: 'tool', name: 'f', disable_parallel_tool_use: true },
        tools: [{ name: 'f', input_schema: { type: 'object' } }],
      }),
      true,
    );
    assert.deepEqual(chat.messages[0], { role: 'system', content: 'sys' });
    assert.equal(chat.messages[2]?.content, 'calling');
    assert.equal(chat.messages[2]?.tool_calls?.[0]?.function.arguments, '{"a":1}');
    assert.deepEqual(chat.messages[3], { role: 'tool', tool_call_id: 't1', content: 'Error: bad' });
    assert.deepEqual(chat.messages[4], { role: 'user', content: [{ type: 'text', text: 'and also' }] });
    assert.deepEqual(chat.tool_choice, { type: 'function', function: { name: 'f' } });
    assert.equal(chat.parallel_tool_calls, false);
    assert.equal(chat.stream, true);
  });

  it('answers: stop reasons mapped, broken tool JSON kept under one key, usage carried', () => {
    const chat = {
      body: JSON.stringify({
        choices: [
          {
            message: {
              content: null,
              tool_calls: [{ id: 'c', function: { name: 'f', arguments: '{oops' } }],
            },
            finish_reason: 'tool_calls',
          },
        ],
      }),
      usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 },
    };
    const m = JSON.parse(chatToMessage(chat, 'client').body);
    assert.equal(m.stop_reason, 'tool_use');
    assert.deepEqual(m.content[0].input, { arguments: '{oops' });
    assert.deepEqual(m.usage, { input_tokens: 1, output_tokens: 2 });
    assert.deepEqual(toolInput('[1]'), { value: [1] });
  });

  it('stream: one block at a time, message_delta with the stop reason and usage, then message_stop', () => {
    const s = chatToMessagesStream(inner(), 'client', 9);
    assert.deepEqual(s.push(chunk({ role: 'assistant', content: '' })).out, []);
    const out = [
      ...s.push(chunk({ content: 'a' })).out,
      ...s.push(
        chunk(
          { tool_calls: [{ index: 0, id: 'c1', function: { name: 'f', arguments: '{}' } }] },
          'tool_calls',
        ),
      ).out,
      ...s.push(usageChunk).out,
      ...s.push(DONE).out,
    ];
    const evs = events(out);
    assert.deepEqual(
      evs.map((e) => e.type),
      [
        'message_start',
        'content_block_start',
        'content_block_delta',
        'content_block_stop',
        'content_block_start',
        'content_block_delta',
        'content_block_stop',
        'message_delta',
        'message_stop',
      ],
    );
    assert.equal(evs[0]?.data.message.usage.input_tokens, 9);
    assert.equal(evs[4]?.data.index, 1);
    assert.deepEqual(evs[7]?.data.delta, { stop_reason: 'tool_use', stop_sequence: null });
    assert.deepEqual(evs[7]?.data.usage, { input_tokens: 5, output_tokens: 2 });
  });

  it('pass-through stream: model renamed in message_start, usage from start and delta', () => {
    const s = passthroughMessagesStream((t) => t.replace('"up"', '"client"'));
    const start = s.push({
      event: 'message_start',
      data: '{"type":"message_start","message":{"model":"up","usage":{"input_tokens":4,"output_tokens":1}}}',
    });
    assert.match(start.out[0] ?? '', /"client"/);
    s.push({ event: 'message_delta', data: '{"type":"message_delta","usage":{"output_tokens":8}}' });
    const stop = s.push({ event: 'message_stop', data: '{"type":"message_stop"}' });
    assert.deepEqual(stop.usage, { prompt_tokens: 4, completion_tokens: 8, total_tokens: 12 });
    assert.equal(s.push({ event: 'message_start', data: '{bad' }).error !== undefined, true);
  });

  it('refuses bad shapes naming the field', () => {
    const ok = { model: 'm', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] };
    rejects400(() => validateMessages({ ...ok, max_tokens: 1.5 }), 'max_tokens');
    rejects400(() => validateMessages({ ...ok, system: 5 }), 'system');
    rejects400(
      () => validateMessages({ ...ok, messages: [{ role: 'user', content: 5 }] }),
      'messages.0.content',
    );
    rejects400(() => validateMessages({ ...ok, messages: ['x'] }), 'messages.0');
    rejects400(
      () =>
        messagesToChat(
          validateMessages({
            ...ok,
            messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'file' } }] }],
          }),
          false,
        ),
      'messages.0.content.0.source',
    );
    rejects400(
      () =>
        messagesToChat(
          validateMessages({ ...ok, tools: [{ name: 'f' }], tool_choice: { type: 'maybe' } }),
          false,
        ),
      'tool_choice',
    );
  });
});

describe('translated streams: hostile upstream chunks', () => {
  // JSON that parses but is no chat chunk (null, an array, a null choice, a string delta) is skipped
  // by both translators, and the stream goes on with the next real chunk.
  const odd = [
    'null',
    '[1]',
    '"x"',
    '{"choices":[null]}',
    '{"choices":[{"delta":"x"}]}',
    '{"choices":7}',
    '{bad',
  ];
  for (const [name, make] of [
    ['responses', () => chatToResponsesStream(inner(), { model: 'x', input: 'hi' }, 'client')],
    ['messages', () => chatToMessagesStream(inner(), 'client', 9)],
  ] as const) {
    it(`${name}: skips them without throwing, then translates the next chunk`, () => {
      const s = make();
      for (const data of odd) assert.deepEqual(s.push({ event: undefined, data }).out, [], data);
      const out = s.push(chunk({ content: 'ok' })).out.join('');
      assert.match(out, /ok/);
    });
  }
});
