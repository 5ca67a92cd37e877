import { renameModel } from '../model-name.js';
import type {
  ChatRequest,
  ClientResponse,
  EmbeddingsRequest,
  ProviderAdapter,
  SseEvent,
  StreamStep,
  StreamTranslator,
  UpstreamErrorInfo,
  UpstreamRequest,
  Usage,
} from '../types.js';
import { usageOf } from '../types.js';

/**
 * OpenAI and every OpenAI-compatible server (vLLM, Ollama, llama.cpp server, DeepSeek, DashScope
 * compatible mode). Bodies pass through with the target's model name; the upstream's bytes go back
 * to the client unchanged except where the client did not ask for the usage chunk.
 */
export const openaiProvider: ProviderAdapter = {
  type: 'openai',

  authHeaders(apiKey): Record<string, string> {
    return apiKey ? { authorization: `Bearer ${apiKey}` } : {};
  },

  chatRequest(req: ChatRequest, model: string): UpstreamRequest {
    const body: ChatRequest = { ...req, model };
    // Always ask for the final usage chunk so streamed usage is known (quotas, usage records).
    if (req.stream) body.stream_options = { ...(req.stream_options ?? {}), include_usage: true };
    return { path: '/chat/completions', body: JSON.stringify(body) };
  },

  chatResponse(text: string, clientModel: string): ClientResponse {
    return { body: renameModel(text, clientModel), usage: readUsage(text) };
  },

  chatStream({ includeUsage, clientModel }): StreamTranslator {
    return {
      push(ev: SseEvent): StreamStep {
        const data = ev.data;
        if (data === '[DONE]') return { out: [], done: true };
        // Only the usage chunk and error events need parsing; content chunks pass through as bytes.
        const hasUsage = data.includes('"usage":{') || data.includes('"usage": {');
        const hasError = data.startsWith('{"error"') || ev.event === 'error';
        if (!hasUsage && !hasError) return { out: [renameModel(data, clientModel)] };
        let parsed: { usage?: unknown; choices?: unknown[]; error?: { message?: unknown } };
        try {
          parsed = JSON.parse(data);
        } catch {
          return { out: [renameModel(data, clientModel)] };
        }
        if (parsed.error) {
          const msg =
            typeof parsed.error.message === 'string' ? parsed.error.message : 'upstream stream error';
          return { out: [], error: msg };
        }
        const usage = toUsage(parsed.usage);
        const usageOnly = Array.isArray(parsed.choices) && parsed.choices.length === 0;
        // The usage-only chunk goes to the client only when it asked for it (as OpenAI does).
        const out = usageOnly && !includeUsage ? [] : [renameModel(data, clientModel)];
        return usage ? { out, usage } : { out };
      },
    };
  },

  embeddingsRequest(req: EmbeddingsRequest, model: string): UpstreamRequest {
    return { path: '/embeddings', body: JSON.stringify({ ...req, model }) };
  },

  embeddingsResponse(text: string): ClientResponse {
    return { body: text, usage: readUsage(text) };
  },

  errorInfo(text: string): UpstreamErrorInfo | null {
    return openaiErrorInfo(text);
  },
};

function readUsage(text: string): Usage | null {
  try {
    return toUsage((JSON.parse(text) as { usage?: unknown }).usage);
  } catch {
    return null;
  }
}

function toUsage(u: unknown): Usage | null {
  if (!u || typeof u !== 'object') return null;
  const { prompt_tokens, completion_tokens } = u as Record<string, unknown>;
  // Embeddings report prompt_tokens only.
  return usageOf(prompt_tokens, completion_tokens ?? 0);
}

/** `{"error":{...}}` (OpenAI, vLLM), `{"error":"..."}` (Ollama, llama.cpp), `{"message":...}`, or text. */
export function openaiErrorInfo(text: string): UpstreamErrorInfo | null {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    const t = text.trim();
    return t ? { message: clip(t) } : null;
  }
  if (!j || typeof j !== 'object') return null;
  const o = j as Record<string, unknown>;
  const e = o.error;
  if (typeof e === 'string') return { message: clip(e) };
  const src = e && typeof e === 'object' ? (e as Record<string, unknown>) : o;
  if (typeof src.message !== 'string') return null;
  const info: UpstreamErrorInfo = { message: clip(src.message) };
  if (typeof src.type === 'string') info.type = clip(src.type, 64);
  if (typeof src.code === 'string') info.code = clip(src.code, 64);
  if (typeof src.param === 'string') info.param = clip(src.param, 64);
  return info;
}

export function clip(s: string, n = 1000): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}
