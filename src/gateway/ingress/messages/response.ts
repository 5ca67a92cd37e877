import { anthropicUsage } from '../../providers/anthropic/response.js';
import type { ClientResponse, StreamTranslator, Usage } from '../../providers/types.js';
import { newId } from '../shared.js';

// biome-ignore lint/suspicious/noExplicitAny: Anthropic objects are plain JSON built field by field
type Json = Record<string, any>;

/** Chat finish_reason → Anthropic stop_reason (the inverse of the Anthropic provider's finishReason). */
export function stopReason(finish: unknown): string {
  switch (finish) {
    case 'length':
      return 'max_tokens';
    case 'tool_calls':
    case 'function_call':
      return 'tool_use';
    case 'content_filter':
      return 'refusal';
    default:
      return 'end_turn';
  }
}

/** Tool arguments are JSON text in chat completions and an object in Anthropic's tool_use. */
export function toolInput(args: unknown): Json {
  try {
    const v = JSON.parse(typeof args === 'string' && args ? args : '{}');
    return v && typeof v === 'object' && !Array.isArray(v) ? v : { value: v };
  } catch {
    // A model that wrote broken JSON: the client still gets the text, under one key.
    return { arguments: String(args) };
  }
}

/** A chat.completion → an Anthropic message. */
export function chatToMessage(chat: ClientResponse, model: string): ClientResponse {
  const c = JSON.parse(chat.body) as Json;
  const choice = (Array.isArray(c.choices) ? c.choices[0] : null) ?? {};
  const m: Json = choice.message ?? {};
  const content: Json[] = [];
  if (typeof m.content === 'string' && m.content) content.push({ type: 'text', text: m.content });
  for (const call of Array.isArray(m.tool_calls) ? m.tool_calls : [])
    content.push({
      type: 'tool_use',
      id: String(call?.id ?? newId('toolu_')),
      name: String(call?.function?.name ?? ''),
      input: toolInput(call?.function?.arguments),
    });
  const u = chat.usage;
  const body = {
    id: newId('msg_'),
    type: 'message',
    role: 'assistant',
    model,
    content,
    stop_reason: stopReason(choice.finish_reason),
    stop_sequence: null,
    usage: { input_tokens: u?.prompt_tokens ?? 0, output_tokens: u?.completion_tokens ?? 0 },
  };
  return { body: JSON.stringify(body), usage: chat.usage };
}

/** Usage of an Anthropic message (non-streaming pass-through). */
export function messageBodyUsage(text: string): Usage | null {
  try {
    return anthropicUsage((JSON.parse(text) as Json).usage);
  } catch {
    return null;
  }
}

export interface MessagesStream extends StreamTranslator {
  /** The `error` event that ends a stream broken off after data went out. */
  cut(why: string): string;
}

export const frame = (type: string, data: string): string => `event: ${type}\ndata: ${data}\n\n`;

export function messagesCut(why: string): string {
  const data = {
    type: 'error',
    error: { type: 'api_error', message: why, code: 'KAPOK_GATEWAY_STREAM_INTERRUPTED' },
  };
  return frame('error', JSON.stringify(data));
}
