import { Pool } from 'undici';
import { KapokError } from '../../core/errors.js';
import type { ProviderConfig } from '../config.js';
import { PROVIDERS } from '../providers/index.js';
import type { ProviderAdapter } from '../providers/types.js';

/** A configured upstream: its transforms, a keep-alive connection pool and fixed headers. */
export interface Upstream {
  readonly name: string;
  readonly adapter: ProviderAdapter;
  readonly pool: Pool;
  /** baseUrl's path without a trailing slash ('' or '/v1'); request paths are appended. */
  readonly basePath: string;
  readonly origin: string;
  readonly headers: Record<string, string>;
  readonly timeoutMs: number;
}

export function createUpstream(p: ProviderConfig, index: number): Upstream {
  if (p.apiKeyEnv && !p.apiKey) {
    throw new KapokError(
      'KAPOK_CONFIG_INVALID',
      `gateway.providers[${index}].apiKeyEnv names ${p.apiKeyEnv}, which is not set: export it or remove apiKeyEnv for an upstream without a key`,
    );
  }
  const url = new URL(p.baseUrl);
  const adapter = PROVIDERS[p.type];
  const pool = new Pool(url.origin, {
    connections: p.maxConnections,
    connect: { timeout: p.connectTimeoutMs },
    keepAliveTimeout: 30_000,
    headersTimeout: p.timeoutMs,
    bodyTimeout: p.timeoutMs,
  });
  return {
    name: p.name,
    adapter,
    pool,
    basePath: url.pathname.replace(/\/+$/, ''),
    origin: url.origin,
    headers: { ...p.headers, ...adapter.authHeaders(p.apiKey), 'content-type': 'application/json' },
    timeoutMs: p.timeoutMs,
  };
}
