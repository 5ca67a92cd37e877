import { badParam } from '../../errors.js';
import type { ChatMessage, ChatRequest, ContentPart, UpstreamRequest } from '../types.js';

/** Anthropic requires max_tokens; used when the client sets neither max_tokens nor max_completion_tokens. */
export const DEFAULT_MAX_TOKENS = 4096;

type Block = Record<string, unknown>;
interface AnthropicMessage {
  role: 'user' | 'assistant';
  content: Block[];
}

/** OpenAI chat request → Anthropic Messages API request (POST /v1/messages). */
export function toAnthropicRequest(req: ChatRequest, model: string): UpstreamRequest {
  const system: string[] = [];
  const messages: AnthropicMessage[] = [];
  const push = (role: 'user' | 'assistant', blocks: Block[]) => {
    if (!blocks.length) return;
    const last = messages[messages.length - 1];
    // Anthropic wants user and assistant turns to alternate: merge neighbours of one role.
    if (last && last.role === role) last.content.push(...blocks);
    else messages.push({ role, content: blocks });
  };
  req.messages.forEach((m, i) => {
    switch (m.role) {
      case 'system':
      case 'developer':
        system.push(textOf(m, i));
        break;
      case 'user':
        push('user', userBlocks(m, i));
        break;
      case 'assistant':
        push('assistant', assistantBlocks(m, i));
        break;
      case 'tool':
        push('user', [
          { type: 'tool_result', tool_use_id: String(m.tool_call_id ?? ''), content: textOf(m, i) },
        ]);
        break;
      default:
        throw badParam(
          `messages[${i}].role`,
          `messages[${i}].role must be system, developer, user, assistant or tool`,
        );
    }
  });

  const body: Record<string, unknown> = {
    model,
    max_tokens: req.max_completion_tokens ?? req.max_tokens ?? DEFAULT_MAX_TOKENS,
    messages,
  };
  if (system.length) body.system = system.join('\n\n');
  if (req.stream) body.stream = true;
  for (const k of ['temperature', 'top_p', 'top_k'] as const)
    if (typeof req[k] === 'number') body[k] = req[k];
  if (typeof req.stop === 'string') body.stop_sequences = [req.stop];
  else if (Array.isArray(req.stop)) body.stop_sequences = req.stop;
  if (typeof req.user === 'string') body.metadata = { user_id: req.user };
  const tools = toolsOf(req);
  if (tools) body.tools = tools;
  const choice = toolChoiceOf(req.tool_choice);
  if (choice && tools) body.tool_choice = choice;
  return { path: '/v1/messages', body: JSON.stringify(body) };
}

function textOf(m: ChatMessage, i: number): string {
  if (typeof m.content === 'string') return m.content;
  if (m.content == null) return '';
  if (!Array.isArray(m.content))
    throw badParam(`messages[${i}].content`, `messages[${i}].content must be a string or an array of parts`);
  return m.content
    .filter((p) => p.type === 'text' && typeof p.text === 'string')
    .map((p) => p.text)
    .join('\n');
}

function userBlocks(m: ChatMessage, i: number): Block[] {
  if (typeof m.content === 'string') return [{ type: 'text', text: m.content }];
  if (!Array.isArray(m.content))
    throw badParam(`messages[${i}].content`, `messages[${i}].content must be a string or an array of parts`);
  return m.content.map((p, j) => partBlock(p, `messages[${i}].content[${j}]`));
}

function partBlock(p: ContentPart, where: string): Block {
  if (p.type === 'text' && typeof p.text === 'string') return { type: 'text', text: p.text };
  if (p.type === 'image_url' && typeof p.image_url?.url === 'string') {
    const url = p.image_url.url;
    const data = /^data:(image\/[a-z+.-]+);base64,(.*)$/s.exec(url);
    if (data) return { type: 'image', source: { type: 'base64', media_type: data[1], data: data[2] } };
    return { type: 'image', source: { type: 'url', url } };
  }
  throw badParam(where, `${where}: the anthropic provider takes text and image_url parts only`);
}

function assistantBlocks(m: ChatMessage, i: number): Block[] {
  const blocks: Block[] = [];
  const text = textOf(m, i);
  if (text) blocks.push({ type: 'text', text });
  (m.tool_calls ?? []).forEach((c, j) => {
    let input: unknown;
    try {
      input = JSON.parse(c.function?.arguments || '{}');
    } catch {
      throw badParam(
        `messages[${i}].tool_calls[${j}].function.arguments`,
        'tool call arguments must be JSON text',
      );
    }
    blocks.push({ type: 'tool_use', id: c.id, name: c.function?.name, input });
  });
  return blocks;
}

function toolsOf(req: ChatRequest): Block[] | undefined {
  if (!Array.isArray(req.tools) || !req.tools.length) return undefined;
  return req.tools.map((t: { type?: string; function?: Record<string, unknown> }, i: number) => {
    const f = t?.function;
    if (t?.type !== 'function' || !f || typeof f.name !== 'string')
      throw badParam(`tools[${i}]`, `tools[${i}] must be {"type":"function","function":{"name",...}}`);
    return {
      name: f.name,
      ...(typeof f.description === 'string' ? { description: f.description } : {}),
      input_schema: f.parameters ?? { type: 'object', properties: {} },
    };
  });
}

function toolChoiceOf(c: unknown): Block | undefined {
  if (c === 'auto') return { type: 'auto' };
  if (c === 'required') return { type: 'any' };
  if (c === 'none') return { type: 'none' };
  const name = (c as { function?: { name?: unknown } } | null)?.function?.name;
  return typeof name === 'string' ? { type: 'tool', name } : undefined;
}
