/**
 * What a provider folder supplies (Portkey's providers/<name>/ shape): declarative request, response
 * and stream-chunk transforms between the OpenAI wire format Kapok speaks to clients and the
 * upstream's own. Transforms are pure and synchronous; the proxy owns I/O, retries and timeouts.
 */

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** An OpenAI chat completion request, as parsed from the client (unknown fields pass through). */
export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  stream?: boolean;
  stream_options?: { include_usage?: boolean } | null;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  [field: string]: unknown;
}

export interface ChatMessage {
  role: string;
  content?: string | ContentPart[] | null;
  name?: string;
  tool_calls?: ToolCall[];
  tool_call_id?: string;
  [field: string]: unknown;
}

export interface ContentPart {
  type: string;
  text?: string;
  image_url?: { url: string; detail?: string };
  [field: string]: unknown;
}

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface EmbeddingsRequest {
  model: string;
  input: string | string[] | number[] | number[][];
  [field: string]: unknown;
}

/** The upstream call a transform asks for; the proxy adds auth headers, timeouts and tracing. */
export interface UpstreamRequest {
  /** Path appended to the provider's baseUrl (which holds any version prefix). */
  path: string;
  body: string;
}

/** A successful upstream answer turned into the client's OpenAI body. */
export interface ClientResponse {
  /** JSON text for the client (the upstream's own bytes where no translation was needed). */
  body: string;
  usage: Usage | null;
}

/** One server-sent event from the upstream. */
export interface SseEvent {
  event: string | undefined;
  data: string;
}

/** What one upstream event turns into for the client. */
export interface StreamStep {
  /** `data:` payloads for the client, in order (JSON texts; `[DONE]` is written by the proxy). */
  out: string[];
  /** Usage when this event carried it. */
  usage?: Usage;
  /** The upstream says the answer is complete (OpenAI `[DONE]`, Anthropic `message_stop`). */
  done?: boolean;
  /** The upstream reported an error inside the stream. */
  error?: string;
}

export interface StreamTranslator {
  push(ev: SseEvent): StreamStep;
}

/** An upstream's error body reduced to what the client may see. */
export interface UpstreamErrorInfo {
  message: string;
  type?: string;
  code?: string;
  param?: string;
}

export interface ProviderAdapter {
  readonly type: 'openai' | 'anthropic';
  /** Headers carrying the upstream key (and API version where the upstream wants one). */
  authHeaders(apiKey: string | null): Record<string, string>;
  chatRequest(req: ChatRequest, model: string): UpstreamRequest;
  chatResponse(text: string, clientModel: string): ClientResponse;
  /** `includeUsage`: the client asked for the usage chunk (the proxy always asks upstream for it). */
  chatStream(opts: { includeUsage: boolean; clientModel: string }): StreamTranslator;
  embeddingsRequest?(req: EmbeddingsRequest, model: string): UpstreamRequest;
  embeddingsResponse?(text: string): ClientResponse;
  /** Best-effort reading of an upstream error body (any shape; never throws). */
  errorInfo(text: string): UpstreamErrorInfo | null;
}

export function usageOf(prompt: unknown, completion: unknown): Usage | null {
  if (typeof prompt !== 'number' || typeof completion !== 'number') return null;
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}
