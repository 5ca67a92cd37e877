import type { SseEvent, StreamStep, StreamTranslator, Usage } from '../types.js';
import { anthropicUsage, finishReason } from './response.js';

/**
 * Anthropic's stream events → OpenAI chat.completion.chunk payloads:
 * message_start → role chunk; content_block_start (tool_use) → tool_calls head; content_block_delta →
 * content or tool_calls arguments; message_delta → finish_reason; message_stop → usage chunk and done.
 */
export function anthropicStream(opts: { includeUsage: boolean; clientModel: string }): StreamTranslator {
  let id = 'chatcmpl-kapok';
  const created = Math.floor(Date.now() / 1000);
  let promptUsage: Usage | null = null;
  let outputTokens = 0;
  // Anthropic numbers content blocks; OpenAI numbers tool calls from 0.
  const toolIndex = new Map<number, number>();

  const chunk = (delta: Record<string, unknown>, finish: string | null = null, usage?: Usage): string =>
    JSON.stringify({
      id,
      object: 'chat.completion.chunk',
      created,
      model: opts.clientModel,
      choices: usage ? [] : [{ index: 0, delta, finish_reason: finish, logprobs: null }],
      ...(usage ? { usage } : {}),
    });

  return {
    push(ev: SseEvent): StreamStep {
      // biome-ignore lint/suspicious/noExplicitAny: event payloads are checked field by field below
      let d: Record<string, any>;
      try {
        d = JSON.parse(ev.data);
      } catch {
        return { out: [], error: 'upstream sent an event that is not JSON' };
      }
      switch (ev.event ?? d.type) {
        case 'message_start': {
          if (typeof d.message?.id === 'string') id = d.message.id;
          promptUsage = anthropicUsage(d.message?.usage);
          outputTokens = promptUsage?.completion_tokens ?? 0;
          return { out: [chunk({ role: 'assistant', content: '' })] };
        }
        case 'content_block_start': {
          const b = d.content_block;
          if (b?.type === 'tool_use') {
            const n = toolIndex.size;
            toolIndex.set(Number(d.index), n);
            const call = { index: n, id: b.id, type: 'function', function: { name: b.name, arguments: '' } };
            return { out: [chunk({ tool_calls: [call] })] };
          }
          if (b?.type === 'text' && b.text) return { out: [chunk({ content: b.text })] };
          return { out: [] };
        }
        case 'content_block_delta': {
          const delta = d.delta;
          if (delta?.type === 'text_delta') return { out: [chunk({ content: String(delta.text ?? '') })] };
          if (delta?.type === 'input_json_delta') {
            const n = toolIndex.get(Number(d.index)) ?? 0;
            const call = { index: n, function: { arguments: String(delta.partial_json ?? '') } };
            return { out: [chunk({ tool_calls: [call] })] };
          }
          return { out: [] };
        }
        case 'message_delta': {
          if (typeof d.usage?.output_tokens === 'number') outputTokens = d.usage.output_tokens;
          const finish = finishReason(d.delta?.stop_reason);
          return { out: finish ? [chunk({}, finish)] : [] };
        }
        case 'message_stop': {
          const prompt = promptUsage?.prompt_tokens ?? 0;
          const usage: Usage = {
            prompt_tokens: prompt,
            completion_tokens: outputTokens,
            total_tokens: prompt + outputTokens,
          };
          return { out: opts.includeUsage ? [chunk({}, null, usage)] : [], usage, done: true };
        }
        case 'error':
          return { out: [], error: String(d.error?.message ?? 'upstream stream error') };
        default: // ping, content_block_stop and future event types
          return { out: [] };
      }
    },
  };
}
