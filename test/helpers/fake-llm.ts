import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A FAKE model server standing in for vLLM / Ollama / Anthropic in gateway tests: it lies outside
 * the system under test. It speaks the wire formats (OpenAI chat/embeddings with SSE, Anthropic
 * Messages with its event stream) closely enough to exercise Kapok's proxying, but it has no model:
 * answers are fixed text, and its usage figures are the constants below, so tests can check that
 * Kapok reports the upstream's usage rather than its own estimate.
 *
 * Behaviour is switched per instance with `mode`:
 * - ok: answers normally; `streamChunks` content chunks when streaming
 * - status: answers `status` with an error body (e.g. 500, 429, 400); `errorMessage` and
 *   `errorCode` replace its message and code (a null code leaves the field out)
 * - hang: never answers (timeouts)
 * - stall: sends 200 headers at once, then nothing (a body that never comes)
 * - cut: streams `cutAfter` chunks, then destroys the socket (no [DONE])
 * - slowStream: streams one chunk every `chunkDelayMs` (client-abort tests)
 *
 * Call close() from the suite's after() (node:test runs an after() registered inside a before hook
 * right after that hook).
 */
export const FAKE_USAGE = { prompt_tokens: 11, completion_tokens: 7 };

export interface FakeLlm {
  url: string;
  /** The origin, e.g. http://127.0.0.1:1234, for providers of type anthropic. */
  origin: string;
  name: string;
  mode: 'ok' | 'status' | 'hang' | 'stall' | 'cut' | 'slowStream';
  status: number;
  errorMessage: string | null;
  errorCode: string | null;
  streamChunks: number;
  cutAfter: number;
  chunkDelayMs: number;
  requests: Array<{ path: string; headers: IncomingMessage['headers']; body: Record<string, unknown> }>;
  /** Connections whose response was cut short by the client (abort tests). */
  aborted: number;
  close(): Promise<void>;
}

export async function startFakeLlm(name: string): Promise<FakeLlm> {
  const sockets = new Set<import('node:net').Socket>();
  const fake: FakeLlm = {
    url: '',
    origin: '',
    name,
    mode: 'ok',
    status: 500,
    errorMessage: null,
    errorCode: 'fake',
    streamChunks: 3,
    cutAfter: 2,
    chunkDelayMs: 50,
    requests: [],
    aborted: 0,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
    } catch {
      // left empty
    }
    fake.requests.push({ path: req.url ?? '', headers: req.headers, body });
    res.on('close', () => {
      if (!res.writableFinished) fake.aborted++;
    });
    if (fake.mode === 'hang') return;
    if (fake.mode === 'stall') {
      res.writeHead(200, { 'content-type': body.stream ? 'text/event-stream' : 'application/json' });
      res.flushHeaders();
      return;
    }
    if (fake.mode === 'status') {
      res.writeHead(fake.status, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          error: {
            message: fake.errorMessage ?? `fake ${name} says ${fake.status}`,
            type: 'fake_error',
            ...(fake.errorCode === null ? {} : { code: fake.errorCode }),
          },
        }),
      );
      return;
    }
    const path = req.url ?? '';
    if (path.endsWith('/messages')) return anthropic(fake, body, res);
    if (path.endsWith('/embeddings')) {
      const inputs = Array.isArray(body.input) ? body.input : [body.input];
      return json(res, {
        object: 'list',
        model: body.model,
        data: inputs.map((_, i) => ({ object: 'embedding', index: i, embedding: [0.1, 0.2, 0.3] })),
        usage: { prompt_tokens: FAKE_USAGE.prompt_tokens, total_tokens: FAKE_USAGE.prompt_tokens },
      });
    }
    if (!path.endsWith('/chat/completions')) return json(res, { error: { message: 'no such path' } }, 404);
    const id = `chatcmpl-${name}`;
    if (!body.stream) {
      return json(res, {
        id,
        object: 'chat.completion',
        created: 1,
        model: body.model,
        choices: [
          { index: 0, message: { role: 'assistant', content: `hello from ${name}` }, finish_reason: 'stop' },
        ],
        usage: { ...FAKE_USAGE, total_tokens: FAKE_USAGE.prompt_tokens + FAKE_USAGE.completion_tokens },
      });
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const chunk = (delta: object, finish: string | null = null) =>
      `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: 1, model: body.model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    const n = fake.mode === 'cut' ? fake.cutAfter : fake.streamChunks;
    for (let i = 0; i < n; i++) {
      if (fake.mode === 'slowStream') await new Promise((r) => setTimeout(r, fake.chunkDelayMs));
      if (res.destroyed) return;
      res.write(chunk({ content: `w${i} ` }));
    }
    if (fake.mode === 'cut') {
      await new Promise((r) => setTimeout(r, 20));
      res.socket?.destroy();
      return;
    }
    res.write(chunk({}, 'stop'));
    if ((body.stream_options as { include_usage?: boolean } | undefined)?.include_usage) {
      res.write(
        `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: 1, model: body.model, choices: [], usage: { ...FAKE_USAGE, total_tokens: 18 } })}\n\n`,
      );
    }
    res.end('data: [DONE]\n\n');
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  fake.origin = `http://127.0.0.1:${port}`;
  fake.url = `${fake.origin}/v1`;
  return fake;
}

function json(res: ServerResponse, body: unknown, status = 200): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function anthropic(fake: FakeLlm, body: Record<string, unknown>, res: ServerResponse): void {
  const usage = { input_tokens: FAKE_USAGE.prompt_tokens, output_tokens: FAKE_USAGE.completion_tokens };
  const tools = Array.isArray(body.tools) && body.tools.length > 0;
  if (!body.stream) {
    const content: object[] = [{ type: 'text', text: `hello from ${fake.name}` }];
    if (tools)
      content.push({ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Guangzhou' } });
    json(res, {
      id: 'msg_1',
      type: 'message',
      role: 'assistant',
      model: body.model,
      content,
      stop_reason: tools ? 'tool_use' : 'end_turn',
      usage,
    });
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  const ev = (type: string, data: object) =>
    res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
  ev('message_start', {
    message: {
      id: 'msg_1',
      model: body.model,
      usage: { input_tokens: usage.input_tokens, output_tokens: 1 },
    },
  });
  ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
  ev('ping', {});
  ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'hello ' } });
  ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'there' } });
  ev('content_block_stop', { index: 0 });
  if (tools) {
    ev('content_block_start', {
      index: 1,
      content_block: { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: {} },
    });
    ev('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json: '{"city":' } });
    ev('content_block_delta', {
      index: 1,
      delta: { type: 'input_json_delta', partial_json: '"Guangzhou"}' },
    });
    ev('content_block_stop', { index: 1 });
  }
  ev('message_delta', {
    delta: { stop_reason: tools ? 'tool_use' : 'end_turn' },
    usage: { output_tokens: usage.output_tokens },
  });
  ev('message_stop', {});
  res.end();
}
