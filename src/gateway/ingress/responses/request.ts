import { badParam } from '../../errors.js';
import type { ChatMessage, ChatRequest, ContentPart, ToolCall } from '../../providers/types.js';
import { isObject, MAX_ITEMS } from '../shared.js';

/** An OpenAI Responses API request as the client sent it (fields Kapok does not read pass through). */
export interface ResponsesRequest {
  model: string;
  input: string | Array<Record<string, unknown>>;
  instructions?: string | null;
  stream?: boolean | null;
  max_output_tokens?: number | null;
  [field: string]: unknown;
}

/**
 * Shape checks before any quota is charged: `param` names the offending field. Fields that only a
 * translation needs (item types, content parts) are checked by toChatRequest.
 */
export function validateResponses(body: unknown): ResponsesRequest {
  if (!isObject(body)) throw badParam('body', 'the request body must be a JSON object');
  const input = body.input;
  if (typeof input !== 'string' && !Array.isArray(input))
    throw badParam('input', 'input: a string, or an array of input items ({role, content} or {type, ...})');
  if (Array.isArray(input)) {
    if (input.length === 0) throw badParam('input', 'input: the array is empty');
    if (input.length > MAX_ITEMS) throw badParam('input', `input: at most ${MAX_ITEMS} items`);
    input.forEach((item, i) => {
      if (!isObject(item)) throw badParam(`input[${i}]`, `input[${i}] must be an object`);
    });
  }
  if (body.instructions != null && typeof body.instructions !== 'string')
    throw badParam('instructions', 'instructions must be a string');
  if (body.stream != null && typeof body.stream !== 'boolean')
    throw badParam('stream', 'stream must be true or false');
  const max = body.max_output_tokens;
  if (max != null && (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > 10_000_000))
    throw badParam('max_output_tokens', 'max_output_tokens must be a whole number of at least 1');
  if (body.tools != null && (!Array.isArray(body.tools) || body.tools.length > MAX_ITEMS))
    throw badParam('tools', `tools must be an array (at most ${MAX_ITEMS})`);
  return body as ResponsesRequest;
}

/**
 * Responses request → chat completions request, for upstreams without a Responses API (most local
 * servers, and Anthropic through its chat transforms). Stateless: previous_response_id and
 * conversation need a stored history Kapok does not keep, so they are refused with a clear 400.
 */
export function toChatRequest(r: ResponsesRequest, stream: boolean): ChatRequest {
  for (const k of ['previous_response_id', 'conversation'] as const) {
    if (r[k] != null)
      throw badParam(
        k,
        `${k} needs a stored conversation: this model's upstream has no Responses API and Kapok keeps none; send the whole history in input`,
      );
  }
  const messages: ChatMessage[] = [];
  if (typeof r.instructions === 'string' && r.instructions)
    messages.push({ role: 'system', content: r.instructions });
  if (typeof r.input === 'string') messages.push({ role: 'user', content: r.input });
  else
    r.input.forEach((item, i) => {
      addItem(messages, item, `input[${i}]`);
    });
  if (!messages.length) throw badParam('input', 'input holds no message');

  const chat: ChatRequest = { model: r.model, messages };
  if (stream) chat.stream = true;
  if (r.max_output_tokens != null) chat.max_completion_tokens = r.max_output_tokens;
  for (const k of ['temperature', 'top_p', 'parallel_tool_calls', 'user', 'service_tier'] as const)
    if (r[k] != null) chat[k] = r[k];
  // Chat completions takes top_logprobs only together with logprobs.
  if (typeof r.top_logprobs === 'number')
    Object.assign(chat, { logprobs: true, top_logprobs: r.top_logprobs });
  if (typeof r.safety_identifier === 'string' && chat.user === undefined) chat.user = r.safety_identifier;
  const effort = (r.reasoning as { effort?: unknown } | null | undefined)?.effort;
  if (typeof effort === 'string') chat.reasoning_effort = effort;
  const tools = toolsOf(r.tools);
  if (tools) chat.tools = tools;
  if (r.tool_choice != null && tools) chat.tool_choice = toolChoiceOf(r.tool_choice);
  const format = (r.text as { format?: unknown } | null | undefined)?.format;
  if (format != null) chat.response_format = formatOf(format);
  return chat;
}

function addItem(messages: ChatMessage[], item: Record<string, unknown>, where: string): void {
  const type = item.type ?? 'message';
  switch (type) {
    case 'message': {
      const role = item.role;
      if (role !== 'user' && role !== 'assistant' && role !== 'system' && role !== 'developer')
        throw badParam(`${where}.role`, `${where}.role must be user, assistant, system or developer`);
      messages.push({ role, content: contentOf(item.content, `${where}.content`, role) });
      return;
    }
    case 'function_call': {
      if (typeof item.call_id !== 'string' || typeof item.name !== 'string')
        throw badParam(where, `${where}: a function_call item needs call_id and name`);
      const call: ToolCall = {
        id: item.call_id,
        type: 'function',
        function: { name: item.name, arguments: typeof item.arguments === 'string' ? item.arguments : '{}' },
      };
      // Consecutive calls are one assistant turn with several tool_calls, as chat completions wants.
      const last = messages[messages.length - 1];
      if (last?.role === 'assistant') last.tool_calls = [...(last.tool_calls ?? []), call];
      else messages.push({ role: 'assistant', content: null, tool_calls: [call] });
      return;
    }
    case 'function_call_output': {
      if (typeof item.call_id !== 'string')
        throw badParam(`${where}.call_id`, `${where}: a function_call_output item needs call_id`);
      const out = item.output;
      const content =
        typeof out === 'string' ? out : Array.isArray(out) ? textOfParts(out) : JSON.stringify(out ?? '');
      messages.push({ role: 'tool', tool_call_id: item.call_id, content });
      return;
    }
    case 'reasoning':
      return; // the model's own reasoning summary: chat completions has no place for it
    default:
      throw badParam(
        `${where}.type`,
        `${where}.type ${JSON.stringify(String(type)).slice(0, 64)} is not supported for this model (its upstream has no Responses API): use message, function_call or function_call_output items`,
      );
  }
}

function contentOf(content: unknown, where: string, role: string): string | ContentPart[] {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content))
    throw badParam(where, `${where} must be a string or an array of content parts`);
  if (role !== 'user') return textOfParts(content);
  return content.map((p: unknown, j: number) => partOf(p, `${where}[${j}]`));
}

function partOf(p: unknown, where: string): ContentPart {
  if (!isObject(p)) throw badParam(where, `${where} must be an object`);
  if ((p.type === 'input_text' || p.type === 'output_text') && typeof p.text === 'string')
    return { type: 'text', text: p.text };
  if (p.type === 'input_image') {
    if (typeof p.image_url !== 'string')
      throw badParam(
        `${where}.image_url`,
        `${where}: input_image needs image_url (a URL or data: URL); file_id is not supported`,
      );
    return {
      type: 'image_url',
      image_url: { url: p.image_url, ...(typeof p.detail === 'string' ? { detail: p.detail } : {}) },
    };
  }
  throw badParam(
    `${where}.type`,
    `${where}: only input_text and input_image parts are supported for this model`,
  );
}

function textOfParts(parts: unknown[]): string {
  return parts
    .map((p) =>
      isObject(p) && typeof p.text === 'string'
        ? p.text
        : isObject(p) && typeof p.refusal === 'string'
          ? p.refusal
          : '',
    )
    .join('');
}

function toolsOf(tools: unknown): Array<Record<string, unknown>> | undefined {
  if (!Array.isArray(tools) || !tools.length) return undefined;
  return tools.map((t: unknown, i: number) => {
    if (!isObject(t) || t.type !== 'function' || typeof t.name !== 'string')
      throw badParam(
        `tools[${i}]`,
        `tools[${i}]: only {"type":"function","name",...} tools are supported for this model (built-in tools need an upstream with a Responses API)`,
      );
    const fn: Record<string, unknown> = {
      name: t.name,
      parameters: t.parameters ?? { type: 'object', properties: {} },
    };
    if (typeof t.description === 'string') fn.description = t.description;
    if (typeof t.strict === 'boolean') fn.strict = t.strict;
    return { type: 'function', function: fn };
  });
}

function toolChoiceOf(c: unknown): unknown {
  if (c === 'auto' || c === 'none' || c === 'required') return c;
  if (isObject(c) && c.type === 'function' && typeof c.name === 'string')
    return { type: 'function', function: { name: c.name } };
  throw badParam('tool_choice', 'tool_choice must be auto, none, required or {"type":"function","name"}');
}

function formatOf(f: unknown): unknown {
  if (!isObject(f)) throw badParam('text.format', 'text.format must be an object');
  if (f.type === 'text' || f.type === 'json_object') return { type: f.type };
  if (f.type === 'json_schema') {
    if (typeof f.name !== 'string' || !isObject(f.schema))
      throw badParam('text.format', 'text.format json_schema needs name and schema');
    const js: Record<string, unknown> = { name: f.name, schema: f.schema };
    if (typeof f.strict === 'boolean') js.strict = f.strict;
    if (typeof f.description === 'string') js.description = f.description;
    return { type: 'json_schema', json_schema: js };
  }
  throw badParam('text.format.type', 'text.format.type must be text, json_object or json_schema');
}

/** Text of a Responses input for the prompt estimate (quota reservation, degradation). */
export function promptText(r: ResponsesRequest): string {
  const parts: string[] = [];
  if (typeof r.instructions === 'string') parts.push(r.instructions);
  if (typeof r.input === 'string') parts.push(r.input);
  else
    for (const item of r.input) {
      const c = item.content;
      if (typeof c === 'string') parts.push(c);
      else if (Array.isArray(c)) parts.push(textOfParts(c));
      if (typeof item.arguments === 'string') parts.push(item.arguments);
      if (typeof item.output === 'string') parts.push(item.output);
    }
  if (Array.isArray(r.tools)) parts.push(JSON.stringify(r.tools));
  return parts.join('\n');
}
