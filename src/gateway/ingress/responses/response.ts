import type { ClientResponse, Usage } from '../../providers/types.js';
import { isObject, newId } from '../shared.js';
import type { ResponsesRequest } from './request.js';

// biome-ignore lint/suspicious/noExplicitAny: Responses objects are plain JSON built field by field
type Json = Record<string, any>;

/** Responses usage from chat usage (cached and reasoning details when the upstream gave them). */
export function responsesUsage(u: Usage, raw?: Json | null): Json {
  return {
    input_tokens: u.prompt_tokens,
    input_tokens_details: { cached_tokens: raw?.prompt_tokens_details?.cached_tokens ?? 0 },
    output_tokens: u.completion_tokens,
    output_tokens_details: { reasoning_tokens: raw?.completion_tokens_details?.reasoning_tokens ?? 0 },
    total_tokens: u.total_tokens,
  };
}

/** The response object's fields that echo the request, with `status` and an empty output. */
export function responseShell(r: ResponsesRequest, id: string, model: string, createdAt: number): Json {
  return {
    id,
    object: 'response',
    created_at: createdAt,
    status: 'in_progress',
    background: false,
    error: null,
    incomplete_details: null,
    instructions: r.instructions ?? null,
    max_output_tokens: r.max_output_tokens ?? null,
    metadata: isObject(r.metadata) ? r.metadata : {},
    model,
    output: [],
    parallel_tool_calls: r.parallel_tool_calls ?? true,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    // Translated answers are not stored: there is nothing to fetch or continue from later.
    store: false,
    temperature: r.temperature ?? 1,
    text: isObject(r.text) ? r.text : { format: { type: 'text' } },
    tool_choice: r.tool_choice ?? 'auto',
    tools: Array.isArray(r.tools) ? r.tools : [],
    top_p: r.top_p ?? 1,
    truncation: 'disabled',
    usage: null,
    user: r.user ?? null,
  };
}

/** Chat finish_reason → the response's status and incomplete_details. */
export function statusOf(finish: unknown): { status: string; incomplete_details: Json | null } {
  if (finish === 'length')
    return { status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' } };
  if (finish === 'content_filter')
    return { status: 'incomplete', incomplete_details: { reason: 'content_filter' } };
  return { status: 'completed', incomplete_details: null };
}

/** A chat.completion (the upstream's, or the Anthropic provider's translation) → a Responses response. */
export function fromChatCompletion(chat: ClientResponse, r: ResponsesRequest, model: string): ClientResponse {
  const c = JSON.parse(chat.body) as Json;
  const choice = (Array.isArray(c.choices) ? c.choices[0] : null) ?? {};
  const m: Json = choice.message ?? {};
  const output: Json[] = [];
  const content: Json[] = [];
  if (typeof m.content === 'string' && m.content)
    content.push({ type: 'output_text', text: m.content, annotations: [], logprobs: [] });
  if (typeof m.refusal === 'string' && m.refusal) content.push({ type: 'refusal', refusal: m.refusal });
  if (content.length)
    output.push({ type: 'message', id: newId('msg_'), status: 'completed', role: 'assistant', content });
  for (const call of Array.isArray(m.tool_calls) ? m.tool_calls : []) {
    output.push({
      type: 'function_call',
      id: newId('fc_'),
      call_id: String(call?.id ?? newId('call_')),
      name: String(call?.function?.name ?? ''),
      arguments: String(call?.function?.arguments ?? '{}'),
      status: 'completed',
    });
  }
  const created = typeof c.created === 'number' ? c.created : Math.floor(Date.now() / 1000);
  const body = responseShell(r, newId('resp_'), model, created);
  Object.assign(body, statusOf(choice.finish_reason), { output });
  if (chat.usage) body.usage = responsesUsage(chat.usage, c.usage);
  return { body: JSON.stringify(body), usage: chat.usage };
}
