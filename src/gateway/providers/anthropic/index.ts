import type { ProviderAdapter } from '../types.js';
import { toAnthropicRequest } from './request.js';
import { anthropicErrorInfo, fromAnthropicResponse } from './response.js';
import { anthropicStream } from './stream.js';

/** Anthropic Messages API behind OpenAI chat completions (no embeddings endpoint upstream). */
export const anthropicProvider: ProviderAdapter = {
  type: 'anthropic',
  authHeaders(apiKey) {
    return { 'anthropic-version': '2023-06-01', ...(apiKey ? { 'x-api-key': apiKey } : {}) };
  },
  chatRequest: toAnthropicRequest,
  chatResponse: fromAnthropicResponse,
  chatStream: anthropicStream,
  errorInfo: anthropicErrorInfo,
};
