import { badParam } from '../../errors.js';
import type { ChatMessage, ChatRequest, ContentPart, ToolCall } from '../../providers/types.js';
import { isObject, MAX_ITEMS } from '../shared.js';

/** An Anthropic Messages API request as the client sent it (unread fields pass through to Anthropic). */
export interface MessagesRequest {
  model: string;
  max_tokens: number;
  messages: Array<{ role: 'user' | 'assistant'; content: string | Array<Record<string, unknown>> }>;
  system?: string | Array<Record<string, unknown>>;
  stream?: boolean;
  [field: string]: unknown;
}

/**
 * Shape checks before any quota is charged, with Anthropic's own rules (max_tokens is required,
 * except when counting tokens).
 */
export function validateMessages(body: unknown, opts = { maxTokens: true }): MessagesRequest {
  if (!isObject(body)) throw badParam('body', 'the request body must be a JSON object');
  const max = body.max_tokens;
  if (
    (opts.maxTokens || max != null) &&
    (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > 10_000_000)
  )
    throw badParam('max_tokens', 'max_tokens: required, a whole number of at least 1');
  const msgs = body.messages;
  if (!Array.isArray(msgs) || msgs.length === 0)
    throw badParam('messages', 'messages: a non-empty array of {role, content} is required');
  if (msgs.length > MAX_ITEMS) throw badParam('messages', `messages: at most ${MAX_ITEMS} messages`);
  msgs.forEach((m: unknown, i: number) => {
    if (!isObject(m)) throw badParam(`messages.${i}`, `messages.${i} must be an object`);
    if (m.role !== 'user' && m.role !== 'assistant')
      throw badParam(`messages.${i}.role`, `messages.${i}.role must be user or assistant`);
    if (typeof m.content !== 'string' && !Array.isArray(m.content))
      throw badParam(`messages.${i}.content`, `messages.${i}.content must be a string or an array of blocks`);
  });
  if (body.system != null && typeof body.system !== 'string' && !Array.isArray(body.system))
    throw badParam('system', 'system must be a string or an array of text blocks');
  if (body.stream != null && typeof body.stream !== 'boolean')
    throw badParam('stream', 'stream must be true or false');
  if (body.tools != null && (!Array.isArray(body.tools) || body.tools.length > MAX_ITEMS))
    throw badParam('tools', `tools must be an array (at most ${MAX_ITEMS})`);
  return body as MessagesRequest;
}

/**
 * Messages request → chat completions request, for upstreams that are not Anthropic: the inverse
 * of the Anthropic provider's toAnthropicRequest. tool_result blocks become `tool` messages (ahead
 * of the rest of their user turn, as chat completions wants them right after the tool calls).
 */
export function messagesToChat(r: MessagesRequest, stream: boolean): ChatRequest {
  const messages: ChatMessage[] = [];
  const system = typeof r.system === 'string' ? r.system : Array.isArray(r.system) ? textOf(r.system) : '';
  if (system) messages.push({ role: 'system', content: system });
  r.messages.forEach((m, i) => {
    const where = `messages.${i}.content`;
    if (typeof m.content === 'string') {
      messages.push({ role: m.role, content: m.content });
      return;
    }
    if (m.role === 'assistant') messages.push(assistantOf(m.content, where));
    else userOf(m.content, where, messages);
  });
  const chat: ChatRequest = { model: r.model, messages, max_tokens: r.max_tokens };
  if (stream) chat.stream = true;
  for (const k of ['temperature', 'top_p', 'top_k'] as const) if (typeof r[k] === 'number') chat[k] = r[k];
  if (Array.isArray(r.stop_sequences) && r.stop_sequences.length) chat.stop = r.stop_sequences;
  const user = (r.metadata as { user_id?: unknown } | undefined)?.user_id;
  if (typeof user === 'string') chat.user = user;
  if (Array.isArray(r.tools) && r.tools.length) {
    chat.tools = r.tools.map((t: unknown, i: number) => {
      if (!isObject(t) || typeof t.name !== 'string' || (t.type != null && t.type !== 'custom'))
        throw badParam(
          `tools.${i}`,
          `tools.${i}: only client tools ({name, description, input_schema}) are supported for this model (server tools need an Anthropic upstream)`,
        );
      const fn: Record<string, unknown> = { name: t.name, parameters: t.input_schema ?? { type: 'object' } };
      if (typeof t.description === 'string') fn.description = t.description;
      return { type: 'function', function: fn };
    });
    const choice = toolChoiceOf(r.tool_choice);
    if (choice !== undefined) chat.tool_choice = choice;
    if (
      (r.tool_choice as { disable_parallel_tool_use?: unknown } | undefined)?.disable_parallel_tool_use ===
      true
    )
      chat.parallel_tool_calls = false;
  }
  return chat;
}

function userOf(blocks: Array<Record<string, unknown>>, where: string, messages: ChatMessage[]): void {
  const parts: ContentPart[] = [];
  blocks.forEach((b, j) => {
    const at = `${where}.${j}`;
    if (!isObject(b)) throw badParam(at, `${at} must be an object`);
    if (b.type === 'text' && typeof b.text === 'string') parts.push({ type: 'text', text: b.text });
    else if (b.type === 'image')
      parts.push({ type: 'image_url', image_url: { url: imageUrl(b.source, at) } });
    else if (b.type === 'tool_result') {
      if (typeof b.tool_use_id !== 'string')
        throw badParam(`${at}.tool_use_id`, `${at}: tool_result needs tool_use_id`);
      const c = b.content;
      const text = typeof c === 'string' ? c : Array.isArray(c) ? textOf(c) : '';
      messages.push({
        role: 'tool',
        tool_call_id: b.tool_use_id,
        content: b.is_error === true ? `Error: ${text}` : text,
      });
    } else
      throw badParam(
        `${at}.type`,
        `${at}: only text, image and tool_result blocks are supported for this model`,
      );
  });
  if (parts.length) messages.push({ role: 'user', content: parts });
}

function assistantOf(blocks: Array<Record<string, unknown>>, where: string): ChatMessage {
  let text = '';
  const calls: ToolCall[] = [];
  blocks.forEach((b, j) => {
    const at = `${where}.${j}`;
    if (!isObject(b)) throw badParam(at, `${at} must be an object`);
    if (b.type === 'text' && typeof b.text === 'string') text += b.text;
    else if (b.type === 'tool_use') {
      if (typeof b.id !== 'string' || typeof b.name !== 'string')
        throw badParam(at, `${at}: tool_use needs id and name`);
      calls.push({
        id: b.id,
        type: 'function',
        function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) },
      });
    } else if (b.type !== 'thinking' && b.type !== 'redacted_thinking')
      // Thinking blocks are the model's own: other upstreams cannot read them back, so they are left out.
      throw badParam(`${at}.type`, `${at}: only text and tool_use blocks are supported in assistant turns`);
  });
  const m: ChatMessage = { role: 'assistant', content: text || null };
  if (calls.length) m.tool_calls = calls;
  return m;
}

function imageUrl(source: unknown, at: string): string {
  if (isObject(source)) {
    if (source.type === 'base64' && typeof source.media_type === 'string' && typeof source.data === 'string')
      return `data:${source.media_type};base64,${source.data}`;
    if (source.type === 'url' && typeof source.url === 'string') return source.url;
  }
  throw badParam(`${at}.source`, `${at}.source must be {type:"base64",media_type,data} or {type:"url",url}`);
}

function textOf(blocks: unknown[]): string {
  return blocks.map((b) => (isObject(b) && typeof b.text === 'string' ? b.text : '')).join('\n');
}

function toolChoiceOf(c: unknown): unknown {
  if (!isObject(c)) return undefined;
  if (c.type === 'auto') return 'auto';
  if (c.type === 'any') return 'required';
  if (c.type === 'none') return 'none';
  if (c.type === 'tool' && typeof c.name === 'string')
    return { type: 'function', function: { name: c.name } };
  throw badParam('tool_choice', 'tool_choice.type must be auto, any, tool or none');
}

/** Text of a Messages request for the prompt estimate. */
export function messagesPromptText(r: MessagesRequest): string {
  const parts: string[] = [];
  if (typeof r.system === 'string') parts.push(r.system);
  else if (Array.isArray(r.system)) parts.push(textOf(r.system));
  for (const m of r.messages) {
    if (typeof m.content === 'string') parts.push(m.content);
    else
      for (const b of m.content) {
        if (!isObject(b)) continue;
        if (typeof b.text === 'string') parts.push(b.text);
        if (b.type === 'tool_use') parts.push(JSON.stringify(b.input ?? {}));
        if (typeof b.content === 'string') parts.push(b.content);
        else if (Array.isArray(b.content)) parts.push(textOf(b.content));
      }
  }
  if (Array.isArray(r.tools)) parts.push(JSON.stringify(r.tools));
  return parts.join('\n');
}
