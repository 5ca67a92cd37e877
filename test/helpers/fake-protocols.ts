import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A FAKE model server for the protocol tests (/v1/responses, /v1/messages, /v1/completions): it
 * stands in for vLLM / Ollama / OpenAI / Anthropic, which lie outside Kapok. Its limits: no model
 * behind it. Answers are fixed: "hello from <name>" as text; a call of get_weather({"city":
 * "Guangzhou"}) whenever the request offers tools and its last message is not a tool result;
 * `{"city":"Guangzhou"}` as the text when a JSON schema / JSON object format is asked for. Usage
 * is always FAKE_USAGE. It speaks:
 * - OpenAI chat completions (POST …/chat/completions), streamed as one chunk per word and tool
 *   call argument fragment, with the usage chunk when asked for;
 * - OpenAI completions (POST …/completions) and embeddings (POST …/embeddings, one fixed vector);
 * - the OpenAI Responses API (POST …/responses), streamed as typed events; only message and
 *   function_call output, no built-in tools, no stored state;
 * - Anthropic Messages (POST …/v1/messages), streamed as Anthropic's events.
 * `cut`: a stream sends its first content, then the socket is destroyed (no end event).
 * `status`: every request is answered with that HTTP status and an error body.
 */
// biome-ignore lint/suspicious/noExplicitAny: request bodies are whatever JSON the gateway sent
type Body = Record<string, any>;

export const USAGE = { prompt_tokens: 11, completion_tokens: 7 };

export interface FakeUpstream {
  origin: string;
  url: string;
  name: string;
  cut: boolean;
  status: number | null;
  requests: Array<{ path: string; headers: IncomingMessage['headers']; body: Body }>;
  close(): Promise<void>;
}

export async function startFakeUpstream(name: string): Promise<FakeUpstream> {
  const sockets = new Set<import('node:net').Socket>();
  const fake: FakeUpstream = {
    origin: '',
    url: '',
    name,
    cut: false,
    status: null,
    requests: [],
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let body: Body = {};
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
    } catch {
      // left empty
    }
    const path = req.url ?? '';
    fake.requests.push({ path, headers: req.headers, body });
    if (fake.status !== null)
      return json(res, { error: { message: `fake ${name} says ${fake.status}`, type: 'fake' } }, fake.status);
    try {
      if (path.endsWith('/v1/messages')) return await anthropic(fake, body, res);
      if (path.endsWith('/chat/completions')) return await chat(fake, body, res);
      if (path.endsWith('/completions')) return await completions(fake, body, res);
      if (path.endsWith('/responses')) return await responses(fake, body, res);
      if (path.endsWith('/embeddings'))
        return json(res, {
          object: 'list',
          model: body.model,
          data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2] }],
          usage: { prompt_tokens: USAGE.prompt_tokens, total_tokens: USAGE.prompt_tokens },
        });
      json(res, { error: { message: 'no such path' } }, 404);
    } catch (err) {
      // A fault of the fake itself shows up as an answer, not as a hang.
      if (!res.headersSent)
        json(res, { error: { message: `fake ${name} failed: ${(err as Error).message}` } }, 500);
      else res.destroy();
    }
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  fake.origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake.url = `${fake.origin}/v1`;
  return fake;
}

function json(res: ServerResponse, body: unknown, status = 200): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** What the fake answers: a tool call, JSON, or text. */
function answer(
  fake: FakeUpstream,
  body: Body,
  hasToolResult: boolean,
): { text: string | null; tool: boolean } {
  const tools = Array.isArray(body.tools) && body.tools.length > 0;
  if (tools && !hasToolResult) return { text: null, tool: true };
  const format = body.response_format?.type ?? body.text?.format?.type;
  if (format === 'json_schema' || format === 'json_object')
    return { text: '{"city":"Guangzhou"}', tool: false };
  return { text: `hello from ${fake.name}`, tool: false };
}

const ARGS = ['{"city":', '"Guangzhou"}'];

async function cutNow(res: ServerResponse): Promise<void> {
  await new Promise((r) => setTimeout(r, 20));
  res.socket?.destroy();
}

async function chat(fake: FakeUpstream, body: Body, res: ServerResponse): Promise<void> {
  const msgs = (body.messages ?? []) as Body[];
  const a = answer(
    fake,
    body,
    msgs.some((m) => m.role === 'tool'),
  );
  const id = `chatcmpl-${fake.name}`;
  const base = { id, created: 1, model: body.model };
  const usage = { ...USAGE, total_tokens: USAGE.prompt_tokens + USAGE.completion_tokens };
  const call = {
    id: 'call_1',
    type: 'function',
    function: { name: 'get_weather', arguments: ARGS.join('') },
  };
  if (!body.stream) {
    const message = a.tool
      ? { role: 'assistant', content: null, tool_calls: [call] }
      : { role: 'assistant', content: a.text };
    return json(res, {
      ...base,
      object: 'chat.completion',
      choices: [{ index: 0, message, finish_reason: a.tool ? 'tool_calls' : 'stop' }],
      usage,
    });
  }
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  const chunk = (delta: object, finish: string | null = null) =>
    res.write(
      `data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`,
    );
  chunk({ role: 'assistant', content: '' });
  if (a.tool) {
    chunk({
      tool_calls: [
        { index: 0, id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '' } },
      ],
    });
    for (const part of ARGS) chunk({ tool_calls: [{ index: 0, function: { arguments: part } }] });
  } else {
    const words = (a.text as string).split(/(?<= )/);
    for (const [i, w] of words.entries()) {
      chunk({ content: w });
      if (fake.cut && i === 0) return cutNow(res);
    }
  }
  chunk({}, a.tool ? 'tool_calls' : 'stop');
  if (body.stream_options?.include_usage)
    res.write(
      `data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [], usage })}\n\n`,
    );
  res.end('data: [DONE]\n\n');
}

async function completions(fake: FakeUpstream, body: Body, res: ServerResponse): Promise<void> {
  const base = { id: `cmpl-${fake.name}`, object: 'text_completion', created: 1, model: body.model };
  const usage = { ...USAGE, total_tokens: USAGE.prompt_tokens + USAGE.completion_tokens };
  if (!body.stream)
    return json(res, {
      ...base,
      choices: [{ index: 0, text: ` from ${fake.name}`, finish_reason: 'stop', logprobs: null }],
      usage,
    });
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  for (const t of [' from', ` ${fake.name}`])
    res.write(
      `data: ${JSON.stringify({ ...base, choices: [{ index: 0, text: t, finish_reason: null }] })}\n\n`,
    );
  if (body.stream_options?.include_usage)
    res.write(`data: ${JSON.stringify({ ...base, choices: [], usage })}\n\n`);
  res.end('data: [DONE]\n\n');
}

async function responses(fake: FakeUpstream, body: Body, res: ServerResponse): Promise<void> {
  const input = body.input;
  const a = answer(
    fake,
    body,
    Array.isArray(input) && input.some((i: Body) => i.type === 'function_call_output'),
  );
  const usage = {
    input_tokens: USAGE.prompt_tokens,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: USAGE.completion_tokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: USAGE.prompt_tokens + USAGE.completion_tokens,
  };
  const item = a.tool
    ? {
        type: 'function_call',
        id: 'fc_1',
        call_id: 'call_1',
        name: 'get_weather',
        arguments: ARGS.join(''),
        status: 'completed',
      }
    : {
        type: 'message',
        id: 'msg_1',
        status: 'completed',
        role: 'assistant',
        content: [{ type: 'output_text', text: a.text, annotations: [] }],
      };
  const response = (status: string, output: object[], u: object | null) => ({
    id: 'resp_1',
    object: 'response',
    created_at: 1,
    status,
    model: body.model,
    output,
    usage: u,
    error: null,
    incomplete_details: null,
    tools: body.tools ?? [],
    parallel_tool_calls: true,
  });
  if (!body.stream) return json(res, response('completed', [item], usage));
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  let seq = 0;
  const ev = (type: string, data: object) =>
    res.write(`event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...data })}\n\n`);
  ev('response.created', { response: response('in_progress', [], null) });
  if (a.tool) {
    ev('response.output_item.added', {
      output_index: 0,
      item: { ...item, arguments: '', status: 'in_progress' },
    });
    for (const d of ARGS)
      ev('response.function_call_arguments.delta', { item_id: 'fc_1', output_index: 0, delta: d });
    ev('response.function_call_arguments.done', {
      item_id: 'fc_1',
      output_index: 0,
      arguments: ARGS.join(''),
    });
  } else {
    const text = a.text as string;
    const at = { item_id: 'msg_1', output_index: 0, content_index: 0 };
    ev('response.output_item.added', {
      output_index: 0,
      item: { ...item, status: 'in_progress', content: [] },
    });
    ev('response.content_part.added', { ...at, part: { type: 'output_text', text: '', annotations: [] } });
    ev('response.output_text.delta', { ...at, delta: text.slice(0, 5) });
    if (fake.cut) return cutNow(res);
    ev('response.output_text.delta', { ...at, delta: text.slice(5) });
    ev('response.output_text.done', { ...at, text });
    ev('response.content_part.done', { ...at, part: { type: 'output_text', text, annotations: [] } });
  }
  ev('response.output_item.done', { output_index: 0, item });
  ev('response.completed', { response: response('completed', [item], usage) });
  res.end();
}

async function anthropic(fake: FakeUpstream, body: Body, res: ServerResponse): Promise<void> {
  const msgs = (body.messages ?? []) as Body[];
  const toolResult = msgs.some(
    (m) => Array.isArray(m.content) && m.content.some((b: Body) => b.type === 'tool_result'),
  );
  const a = answer(fake, body, toolResult);
  const usage = { input_tokens: USAGE.prompt_tokens, output_tokens: USAGE.completion_tokens };
  const content = a.tool
    ? [{ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Guangzhou' } }]
    : [{ type: 'text', text: a.text }];
  const message = { id: 'msg_1', type: 'message', role: 'assistant', model: body.model, stop_sequence: null };
  if (!body.stream)
    return json(res, { ...message, content, stop_reason: a.tool ? 'tool_use' : 'end_turn', usage });
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  const ev = (type: string, data: object) =>
    res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
  ev('message_start', {
    message: {
      ...message,
      content: [],
      stop_reason: null,
      usage: { input_tokens: USAGE.prompt_tokens, output_tokens: 1 },
    },
  });
  if (a.tool) {
    ev('content_block_start', {
      index: 0,
      content_block: { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: {} },
    });
    for (const p of ARGS)
      ev('content_block_delta', { index: 0, delta: { type: 'input_json_delta', partial_json: p } });
  } else {
    ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
    ev('ping', {});
    ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'hello ' } });
    if (fake.cut) return cutNow(res);
    ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: `from ${fake.name}` } });
  }
  ev('content_block_stop', { index: 0 });
  ev('message_delta', {
    delta: { stop_reason: a.tool ? 'tool_use' : 'end_turn', stop_sequence: null },
    usage: { output_tokens: USAGE.completion_tokens },
  });
  ev('message_stop', {});
  res.end();
}
