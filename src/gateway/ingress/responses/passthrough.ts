import type { SseEvent, StreamStep, Usage } from '../../providers/types.js';
import { errorEvent, frame, type ResponsesStream } from './events.js';

// biome-ignore lint/suspicious/noExplicitAny: event payloads are plain JSON
type Json = Record<string, any>;

const TERMINAL = new Set(['response.completed', 'response.incomplete', 'response.failed']);
const LIFECYCLE = new Set(['response.created', 'response.in_progress', 'response.queued', ...TERMINAL]);

/**
 * An upstream's own Responses stream, relayed event by event. Only lifecycle events are touched
 * (the model name, when it is rewritten; usage read from the terminal one); deltas pass as bytes.
 */
export function passthroughResponsesStream(rename: (text: string) => string): ResponsesStream {
  let seq = 0;
  return {
    push(ev: SseEvent): StreamStep {
      const type = ev.event ?? /"type"\s*:\s*"([^"]{1,100})"/.exec(ev.data)?.[1] ?? '';
      if (type === 'error') {
        let msg = 'upstream stream error';
        try {
          const d = JSON.parse(ev.data) as Json;
          msg = String(d.message ?? d.error?.message ?? msg);
        } catch {
          // not JSON: the generic message
        }
        return { out: [], error: msg };
      }
      seq++;
      if (!LIFECYCLE.has(type)) return { out: [frame(type, ev.data)] };
      const data = rename(ev.data);
      if (!TERMINAL.has(type)) return { out: [frame(type, data)] };
      let usage: Usage | undefined;
      try {
        const u = (JSON.parse(ev.data) as Json).response?.usage;
        if (typeof u?.input_tokens === 'number' && typeof u?.output_tokens === 'number')
          usage = {
            prompt_tokens: u.input_tokens,
            completion_tokens: u.output_tokens,
            total_tokens: u.input_tokens + u.output_tokens,
          };
      } catch {
        return { out: [], error: 'upstream sent a final event that is not JSON' };
      }
      return usage
        ? { out: [frame(type, data)], usage, done: true }
        : { out: [frame(type, data)], done: true };
    },
    cut: (why) => errorEvent(why, seq++),
  };
}

/** Usage of a Responses API answer (non-streaming pass-through). */
export function responsesBodyUsage(text: string): Usage | null {
  try {
    const u = (JSON.parse(text) as Json).usage;
    if (typeof u?.input_tokens !== 'number' || typeof u?.output_tokens !== 'number') return null;
    return {
      prompt_tokens: u.input_tokens,
      completion_tokens: u.output_tokens,
      total_tokens: u.input_tokens + u.output_tokens,
    };
  } catch {
    return null;
  }
}
