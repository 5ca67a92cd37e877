import { anthropicProvider } from './anthropic/index.js';
import { openaiProvider } from './openai/index.js';
import type { ProviderAdapter } from './types.js';

/** Provider types by `gateway.providers[].type`. A new upstream family adds a folder and a line here. */
export const PROVIDERS: Record<ProviderAdapter['type'], ProviderAdapter> = {
  openai: openaiProvider,
  anthropic: anthropicProvider,
};
