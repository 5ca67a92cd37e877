import { anthropicUsage } from '../../providers/anthropic/response.js';
import type { ClientResponse, SseEvent, StreamStep, StreamTranslator, Usage } from '../../providers/types.js';
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

const frame = (type: string, data: string): string => `event: ${type}\ndata: ${data}\n\n`;

export function messagesCut(why: string): string {
  const data = {
    type: 'error',
    error: { type: 'api_error', message: why, code: 'KAPOK_GATEWAY_STREAM_INTERRUPTED' },
  };
  return frame('error', JSON.stringify(data));
}

/**
 * An Anthropic upstream's own stream, relayed: message_start gets the client's model name, usage is
 * read from message_start (input) and message_delta (output); deltas pass as bytes.
 */
export function passthroughMessagesStream(rename: (text: string) => string): MessagesStream {
  let input: Usage | null = null;
  let output = 0;
  return {
    push(ev: SseEvent): StreamStep {
      const type = ev.event ?? /"type"\s*:\s*"([^"]{1,100})"/.exec(ev.data)?.[1] ?? '';
      switch (type) {
        case 'message_start':
        case 'message_delta':
        case 'error': {
          let d: Json;
          try {
            d = JSON.parse(ev.data);
          } catch {
            return { out: [], error: `upstream sent a ${type} event that is not JSON` };
          }
          if (type === 'error')
            return { out: [], error: String(d.error?.message ?? 'upstream stream error') };
          if (type === 'message_start') {
            input = anthropicUsage(d.message?.usage);
            output = input?.completion_tokens ?? 0;
            return { out: [frame(type, rename(ev.data))] };
          }
          if (typeof d.usage?.output_tokens === 'number') output = d.usage.output_tokens;
          return { out: [frame(type, ev.data)] };
        }
        case 'message_stop': {
          const prompt = input?.prompt_tokens ?? 0;
          const usage = { prompt_tokens: prompt, completion_tokens: output, total_tokens: prompt + output };
          return { out: [frame(type, ev.data)], usage, done: true };
        }
        default:
          return { out: [frame(type, ev.data)] };
      }
    },
    cut: messagesCut,
  };
}
