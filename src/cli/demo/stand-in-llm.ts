import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * `kapok demo`'s stand-in for an LLM server: an OpenAI-compatible HTTP server that is NOT a model.
 * It answers chat completions (plain and streamed) by echoing the last user message in a fixed
 * sentence, embeddings with a deterministic vector (SHA-256 of the text), and /v1/models, so the
 * gateway's keys, quotas, routing, streaming and usage can be tried without a model server. Every
 * answer says what it is. Bodies over 1 MiB are refused; it listens on 127.0.0.1 only.
 */

export const STAND_IN_MODEL = 'stand-in';
const MAX_BODY = 1024 * 1024;

export interface StandInLlm {
  /** Base URL for gateway.providers[].baseUrl (ends in /v1). */
  url: string;
  close(): Promise<void>;
}

export async function startStandInLlm(): Promise<StandInLlm> {
  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) send(res, 500, { error: { message: 'stand-in failed', type: 'server_error' } });
      else res.destroy();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '').split('?')[0];
  if (req.method === 'GET' && path === '/v1/models')
    return send(res, 200, {
      object: 'list',
      data: [{ id: STAND_IN_MODEL, object: 'model', created: 0, owned_by: 'kapok-demo' }],
    });
  if (req.method !== 'POST' || (path !== '/v1/chat/completions' && path !== '/v1/embeddings'))
    return send(res, 404, {
      error: { message: `no route ${req.method} ${path}`, type: 'invalid_request_error' },
    });
  const body = await readJson(req);
  if (!body)
    return send(res, 400, {
      error: { message: 'expected a JSON object body', type: 'invalid_request_error' },
    });
  if (path === '/v1/embeddings') return embeddings(res, body);
  return chat(res, body);
}

function chat(res: ServerResponse, body: Record<string, unknown>): void {
  const messages = Array.isArray(body.messages)
    ? (body.messages as Array<{ role?: unknown; content?: unknown }>)
    : [];
  const last = [...messages].reverse().find((m) => m.role === 'user');
  const said = typeof last?.content === 'string' ? last.content.slice(0, 200) : '';
  const text = `This is Kapok's stand-in model, not an LLM. You said: "${said}"`;
  const words = text.split(' ');
  const promptTokens = Math.max(1, Math.round(JSON.stringify(messages).length / 4));
  const usage = {
    prompt_tokens: promptTokens,
    completion_tokens: words.length,
    total_tokens: promptTokens + words.length,
  };
  const base = { id: `standin-${Date.now()}`, created: Math.floor(Date.now() / 1000), model: STAND_IN_MODEL };
  if (body.stream !== true) {
    send(res, 200, {
      ...base,
      object: 'chat.completion',
      choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
      usage,
    });
    return;
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
  const chunk = (delta: Record<string, unknown>, finish: string | null) =>
    `data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
  res.write(chunk({ role: 'assistant', content: '' }, null));
  // One word every 20 ms, like a small model on a CPU: enough to see streaming work.
  let i = 0;
  const timer = setInterval(() => {
    if (res.destroyed) return clearInterval(timer);
    if (i < words.length) {
      res.write(chunk({ content: (i ? ' ' : '') + words[i] }, null));
      i++;
      return;
    }
    clearInterval(timer);
    res.write(chunk({}, 'stop'));
    res.write(
      `data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [], usage })}\n\n`,
    );
    res.end('data: [DONE]\n\n');
  }, 20);
}

function embeddings(res: ServerResponse, body: Record<string, unknown>): void {
  const inputs = Array.isArray(body.input) ? body.input : [body.input];
  const texts = inputs.map((x) => (typeof x === 'string' ? x : JSON.stringify(x ?? '')));
  const data = texts.map((t, index) => {
    const h = createHash('sha256').update(t).digest();
    // 16 dimensions in [-1, 1): the same text always gets the same vector.
    const embedding = Array.from({ length: 16 }, (_, k) => ((h[k] as number) - 128) / 128);
    return { object: 'embedding', index, embedding };
  });
  const tokens = texts.reduce((n, t) => n + Math.max(1, Math.round(t.length / 4)), 0);
  send(res, 200, {
    object: 'list',
    data,
    model: STAND_IN_MODEL,
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  });
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown> | null> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) return null;
    parts.push(c as Buffer);
  }
  try {
    const v = JSON.parse(Buffer.concat(parts).toString('utf8')) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
