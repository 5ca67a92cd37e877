import type { SseEvent, StreamStep, StreamTranslator, Usage } from '../../providers/types.js';
import { newId, readChatDelta } from '../shared.js';
import { errorEvent, frame, type ResponsesStream } from './events.js';
import type { ResponsesRequest } from './request.js';
import { responseShell, responsesUsage, statusOf } from './response.js';

// biome-ignore lint/suspicious/noExplicitAny: event payloads are plain JSON built field by field
type Json = Record<string, any>;

interface TextItem {
  id: string;
  index: number;
  text: string;
}
interface CallItem {
  id: string;
  index: number;
  callId: string;
  name: string;
  args: string;
}

/**
 * Chat completion chunks (from the provider's own chat stream translator) → Responses events:
 * response.created / in_progress, then per output item output_item.added, content_part.added,
 * output_text.delta or function_call_arguments.delta; at the upstream's end the .done events of
 * every item and response.completed (response.incomplete on a length stop) with usage. Nothing is
 * emitted before the first content, so an attempt that fails first can still be retried.
 */
export function chatToResponsesStream(
  inner: StreamTranslator,
  r: ResponsesRequest,
  model: string,
): ResponsesStream {
  const shell = responseShell(r, newId('resp_'), model, Math.floor(Date.now() / 1000));
  let seq = 0;
  let started = false;
  let text: TextItem | null = null;
  const calls = new Map<number, CallItem>();
  const items: Array<TextItem | CallItem> = [];
  let finish: unknown = null;
  let usage: Usage | null = null;

  const emit = (out: string[], type: string, fields: Json) =>
    out.push(frame(type, JSON.stringify({ type, sequence_number: seq++, ...fields })));
  const start = (out: string[]) => {
    if (started) return;
    started = true;
    emit(out, 'response.created', { response: shell });
    emit(out, 'response.in_progress', { response: shell });
  };
  const messageItem = (t: TextItem, status: string): Json => ({
    type: 'message',
    id: t.id,
    status,
    role: 'assistant',
    content: status === 'completed' ? [outputText(t.text)] : [],
  });
  const callItem = (c: CallItem, status: string): Json => ({
    type: 'function_call',
    id: c.id,
    call_id: c.callId,
    name: c.name,
    arguments: status === 'completed' ? c.args : '',
    status,
  });

  const chunk = (data: string, out: string[]) => {
    const d = readChatDelta(data);
    if (!d) return;
    if (d.finish) finish = d.finish;
    const piece = d.text;
    if (piece) {
      start(out);
      if (!text) {
        text = { id: newId('msg_'), index: items.length, text: '' };
        items.push(text);
        emit(out, 'response.output_item.added', {
          output_index: text.index,
          item: messageItem(text, 'in_progress'),
        });
        emit(out, 'response.content_part.added', {
          item_id: text.id,
          output_index: text.index,
          content_index: 0,
          part: outputText(''),
        });
      }
      text.text += piece;
      emit(out, 'response.output_text.delta', {
        item_id: text.id,
        output_index: text.index,
        content_index: 0,
        delta: piece,
        logprobs: [],
      });
    }
    for (const tc of d.toolCalls) {
      const n = typeof tc?.index === 'number' ? tc.index : 0;
      let call = calls.get(n);
      if (!call) {
        start(out);
        call = {
          id: newId('fc_'),
          index: items.length,
          callId: typeof tc.id === 'string' ? tc.id : newId('call_'),
          name: String(tc.function?.name ?? ''),
          args: '',
        };
        calls.set(n, call);
        items.push(call);
        emit(out, 'response.output_item.added', {
          output_index: call.index,
          item: callItem(call, 'in_progress'),
        });
      }
      const args = tc.function?.arguments;
      if (typeof args === 'string' && args) {
        call.args += args;
        emit(out, 'response.function_call_arguments.delta', {
          item_id: call.id,
          output_index: call.index,
          delta: args,
        });
      }
    }
  };

  const close = (out: string[]) => {
    start(out);
    const output: Json[] = [];
    for (const it of items) {
      if ('callId' in it) {
        emit(out, 'response.function_call_arguments.done', {
          item_id: it.id,
          output_index: it.index,
          name: it.name,
          arguments: it.args,
        });
        const item = callItem(it, 'completed');
        emit(out, 'response.output_item.done', { output_index: it.index, item });
        output.push(item);
      } else {
        const base = { item_id: it.id, output_index: it.index, content_index: 0 };
        emit(out, 'response.output_text.done', { ...base, text: it.text, logprobs: [] });
        emit(out, 'response.content_part.done', { ...base, part: outputText(it.text) });
        const item = messageItem(it, 'completed');
        emit(out, 'response.output_item.done', { output_index: it.index, item });
        output.push(item);
      }
    }
    const st = statusOf(finish);
    const response = { ...shell, ...st, output, usage: usage ? responsesUsage(usage) : null };
    emit(out, st.status === 'completed' ? 'response.completed' : 'response.incomplete', { response });
  };

  return {
    push(ev: SseEvent): StreamStep {
      const step = inner.push(ev);
      const out: string[] = [];
      for (const o of step.out) chunk(o, out);
      if (step.usage) usage = step.usage;
      if (step.error !== undefined) return { out, error: step.error };
      if (step.done) {
        close(out);
        return usage ? { out, usage, done: true } : { out, done: true };
      }
      return step.usage ? { out, usage: step.usage } : { out };
    },
    cut: (why) => errorEvent(why, seq++),
  };
}

function outputText(text: string): Json {
  return { type: 'output_text', text, annotations: [], logprobs: [] };
}
