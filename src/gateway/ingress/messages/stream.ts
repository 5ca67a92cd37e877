import type { SseEvent, StreamStep, StreamTranslator, Usage } from '../../providers/types.js';
import { newId, readChatDelta } from '../shared.js';
import { type MessagesStream, messagesCut, stopReason } from './response.js';

// biome-ignore lint/suspicious/noExplicitAny: event payloads are plain JSON built field by field
type Json = Record<string, any>;

/**
 * Chat completion chunks → Anthropic stream events (the inverse of the Anthropic provider's
 * anthropicStream): message_start, per block content_block_start / _delta / _stop (text_delta or
 * input_json_delta), then message_delta with stop_reason and usage, and message_stop. Blocks are
 * opened one at a time, as Anthropic does. message_start carries Kapok's prompt estimate as
 * input_tokens (the upstream's count arrives only at the end, in message_delta). Nothing is emitted
 * before the first content, so an attempt that fails first can still be retried.
 */
export function chatToMessagesStream(
  inner: StreamTranslator,
  model: string,
  promptEstimate: number,
): MessagesStream {
  let started = false;
  let open: number | null = null;
  let blocks = 0;
  let textBlock: number | null = null;
  const tools = new Map<number, number>();
  let finish: unknown = null;
  let usage: Usage | null = null;

  const emit = (out: string[], type: string, fields: Json) =>
    out.push(`event: ${type}\ndata: ${JSON.stringify({ type, ...fields })}\n\n`);
  const start = (out: string[]) => {
    if (started) return;
    started = true;
    const message = {
      id: newId('msg_'),
      type: 'message',
      role: 'assistant',
      model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: promptEstimate, output_tokens: 0 },
    };
    emit(out, 'message_start', { message });
  };
  const openBlock = (out: string[], block: Json): number => {
    if (open !== null) emit(out, 'content_block_stop', { index: open });
    open = blocks++;
    emit(out, 'content_block_start', { index: open, content_block: block });
    return open;
  };

  const chunk = (data: string, out: string[]) => {
    const d = readChatDelta(data);
    if (!d) return;
    if (d.finish) finish = d.finish;
    const text = d.text;
    if (text) {
      start(out);
      if (textBlock === null || textBlock !== open) textBlock = openBlock(out, { type: 'text', text: '' });
      emit(out, 'content_block_delta', { index: textBlock, delta: { type: 'text_delta', text } });
    }
    for (const tc of d.toolCalls) {
      const n = typeof tc?.index === 'number' ? tc.index : 0;
      let index = tools.get(n);
      if (index === undefined) {
        start(out);
        index = openBlock(out, {
          type: 'tool_use',
          id: typeof tc.id === 'string' ? tc.id : newId('toolu_'),
          name: String(tc.function?.name ?? ''),
          input: {},
        });
        tools.set(n, index);
      }
      const args = tc.function?.arguments;
      if (typeof args === 'string' && args)
        emit(out, 'content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: args } });
    }
  };

  return {
    push(ev: SseEvent): StreamStep {
      const step = inner.push(ev);
      const out: string[] = [];
      for (const o of step.out) chunk(o, out);
      if (step.usage) usage = step.usage;
      if (step.error !== undefined) return { out, error: step.error };
      if (!step.done) return step.usage ? { out, usage: step.usage } : { out };
      start(out);
      if (open !== null) emit(out, 'content_block_stop', { index: open });
      const u = usage
        ? { input_tokens: usage.prompt_tokens, output_tokens: usage.completion_tokens }
        : { output_tokens: 0 };
      emit(out, 'message_delta', {
        delta: { stop_reason: stopReason(finish), stop_sequence: null },
        usage: u,
      });
      emit(out, 'message_stop', {});
      return usage ? { out, usage, done: true } : { out, done: true };
    },
    cut: messagesCut,
  };
}
