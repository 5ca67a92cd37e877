import { clip } from '../openai/index.js';
import type { ClientResponse, ToolCall, UpstreamErrorInfo, Usage } from '../types.js';

/** Anthropic stop_reason → OpenAI finish_reason. */
export function finishReason(stop: unknown): string | null {
  switch (stop) {
    case 'end_turn':
    case 'stop_sequence':
      return 'stop';
    case 'max_tokens':
      return 'length';
    case 'tool_use':
      return 'tool_calls';
    case 'refusal':
      return 'content_filter';
    case null:
    case undefined:
      return null;
    default:
      return 'stop';
  }
}

/** Input tokens include cache reads and writes, as OpenAI's prompt_tokens does. */
export function anthropicUsage(u: unknown, outputFallback = 0): Usage | null {
  if (!u || typeof u !== 'object') return null;
  const o = u as Record<string, unknown>;
  const n = (v: unknown) => (typeof v === 'number' ? v : 0);
  if (typeof o.input_tokens !== 'number' && typeof o.output_tokens !== 'number') return null;
  const prompt = n(o.input_tokens) + n(o.cache_creation_input_tokens) + n(o.cache_read_input_tokens);
  const completion = typeof o.output_tokens === 'number' ? o.output_tokens : outputFallback;
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

/** Anthropic Messages response → OpenAI chat.completion. */
export function fromAnthropicResponse(text: string, clientModel: string): ClientResponse {
  const r = JSON.parse(text) as {
    id?: string;
    content?: Array<{ type: string; text?: string; id?: string; name?: string; input?: unknown }>;
    stop_reason?: string;
    usage?: unknown;
  };
  let content = '';
  const toolCalls: ToolCall[] = [];
  for (const b of r.content ?? []) {
    if (b.type === 'text' && typeof b.text === 'string') content += b.text;
    else if (b.type === 'tool_use')
      toolCalls.push({
        id: String(b.id),
        type: 'function',
        function: { name: String(b.name), arguments: JSON.stringify(b.input ?? {}) },
      });
  }
  const usage = anthropicUsage(r.usage);
  const message: Record<string, unknown> = {
    role: 'assistant',
    content: content || (toolCalls.length ? null : ''),
  };
  if (toolCalls.length) message.tool_calls = toolCalls;
  const body = {
    id: r.id ?? 'chatcmpl-kapok',
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: clientModel,
    choices: [{ index: 0, message, finish_reason: finishReason(r.stop_reason), logprobs: null }],
    ...(usage ? { usage } : {}),
  };
  return { body: JSON.stringify(body), usage };
}

/** `{"type":"error","error":{"type","message"}}` → client-visible info. */
export function anthropicErrorInfo(text: string): UpstreamErrorInfo | null {
  try {
    const j = JSON.parse(text) as { error?: { type?: unknown; message?: unknown } };
    if (j?.error && typeof j.error.message === 'string') {
      return {
        message: clip(j.error.message),
        ...(typeof j.error.type === 'string' ? { type: clip(j.error.type, 64) } : {}),
      };
    }
  } catch {
    // not JSON
  }
  const t = text.trim();
  return t ? { message: clip(t) } : null;
}
