import { anthropicUsage } from '../../providers/anthropic/response.js';
import type { SseEvent, StreamStep, Usage } from '../../providers/types.js';
import { frame, type MessagesStream, messagesCut } from './response.js';

// biome-ignore lint/suspicious/noExplicitAny: event payloads are plain JSON
type Json = Record<string, any>;

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
