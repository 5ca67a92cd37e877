/** Largest number of input items, messages or tools one request may carry. */
export const MAX_ITEMS = 10_000;

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Random id with a prefix (resp_, msg_, fc_): answers need ids when the upstream gives none. */
export function newId(prefix: string): string {
  return `${prefix}${crypto.randomUUID().replaceAll('-', '')}`;
}

/** What one chat-completions stream chunk carries for a translated stream (both ingresses). */
export interface ChatDelta {
  /** The choice's finish_reason when this chunk has one. */
  finish: unknown;
  /** Content and refusal text together: neither target has a refusal delta of its own here. */
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: upstream JSON, read defensively by the caller
  toolCalls: any[];
}

/** The first choice's delta of one SSE data line; null for a line that is not a chunk with a choice. */
export function readChatDelta(data: string): ChatDelta | null {
  // biome-ignore lint/suspicious/noExplicitAny: upstream JSON, every field is checked below
  let c: any;
  try {
    c = JSON.parse(data);
  } catch {
    return null;
  }
  const choice = Array.isArray(c?.choices) ? c.choices[0] : null;
  if (!isObject(choice)) return null;
  const delta = isObject(choice.delta) ? choice.delta : {};
  return {
    finish: choice.finish_reason || null,
    text:
      (typeof delta.content === 'string' ? delta.content : '') +
      (typeof delta.refusal === 'string' ? delta.refusal : ''),
    toolCalls: Array.isArray(delta.tool_calls) ? delta.tool_calls : [],
  };
}
