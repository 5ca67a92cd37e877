import { badParam } from '../errors.js';
import type { ChatRequest, EmbeddingsRequest } from '../providers/types.js';

/**
 * Just enough checking of OpenAI request bodies to fail fast with a clear `param`, before any quota
 * is charged or upstream called. Unknown fields pass through to the upstream untouched.
 */
const MAX_MESSAGES = 10_000;
const MAX_INPUTS = 4096;

export function validateChat(body: unknown): ChatRequest {
  const b = object(body);
  if (!Array.isArray(b.messages) || b.messages.length === 0) {
    throw badParam('messages', 'messages: a non-empty array of {role, content} is required');
  }
  if (b.messages.length > MAX_MESSAGES)
    throw badParam('messages', `messages: at most ${MAX_MESSAGES} messages`);
  b.messages.forEach((m: unknown, i: number) => {
    if (!m || typeof m !== 'object' || Array.isArray(m))
      throw badParam(`messages[${i}]`, `messages[${i}] must be an object`);
    const { role, content } = m as Record<string, unknown>;
    if (typeof role !== 'string' || !role)
      throw badParam(`messages[${i}].role`, `messages[${i}].role must be a string`);
    if (content !== undefined && content !== null && typeof content !== 'string' && !Array.isArray(content)) {
      throw badParam(
        `messages[${i}].content`,
        `messages[${i}].content must be a string, an array of parts or null`,
      );
    }
  });
  if (b.stream !== undefined && b.stream !== null && typeof b.stream !== 'boolean') {
    throw badParam('stream', 'stream must be true or false');
  }
  if (b.stream_options != null && (typeof b.stream_options !== 'object' || Array.isArray(b.stream_options))) {
    throw badParam('stream_options', 'stream_options must be an object');
  }
  for (const k of ['max_tokens', 'max_completion_tokens'] as const) {
    const v = b[k];
    if (v != null && (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 10_000_000)) {
      throw badParam(k, `${k} must be a whole number of at least 1`);
    }
  }
  return b as ChatRequest;
}

export function validateEmbeddings(body: unknown): EmbeddingsRequest {
  const b = object(body);
  const input = b.input;
  const ok =
    (typeof input === 'string' && input.length > 0) ||
    (Array.isArray(input) &&
      input.length > 0 &&
      input.length <= MAX_INPUTS &&
      (input.every((x) => typeof x === 'string') ||
        input.every((x) => Number.isInteger(x)) ||
        input.every((x) => Array.isArray(x) && x.every((y) => Number.isInteger(y)))));
  if (!ok) {
    throw badParam(
      'input',
      `input: a non-empty string, or an array (at most ${MAX_INPUTS}) of strings or token arrays`,
    );
  }
  return b as EmbeddingsRequest;
}

function object(body: unknown): Record<string, unknown> {
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw badParam('body', 'the request body must be a JSON object');
  }
  return body as Record<string, unknown>;
}
