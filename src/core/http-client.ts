import { type Dispatcher, request as undiciRequest } from 'undici';
import { KapokError } from './errors.js';
import { SpanKind, type Tracing } from './tracing.js';

export interface OutgoingRequest {
  method?: Dispatcher.HttpMethod;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  /** Time to the response headers (ms). */
  headersTimeoutMs?: number;
  /** Longest gap between body chunks (ms). */
  bodyTimeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * Outgoing HTTP for capabilities (LLM upstreams, Influx, webhooks): undici with explicit timeouts,
 * a CLIENT span, and W3C `traceparent` injected so the callee joins the caller's trace.
 */
export function createHttpClient(
  tracing: Tracing,
  defaults: { headersTimeoutMs?: number; bodyTimeoutMs?: number } = {},
) {
  const headersTimeout = defaults.headersTimeoutMs ?? 30_000;
  const bodyTimeout = defaults.bodyTimeoutMs ?? 30_000;
  return {
    request(url: string | URL, req: OutgoingRequest = {}): Promise<Dispatcher.ResponseData> {
      const u = typeof url === 'string' ? new URL(url) : url;
      const method = req.method ?? 'GET';
      // Span name carries host only: paths and queries may hold ids or keys.
      return tracing.withSpan(`${method} ${u.host}`, SpanKind.CLIENT, async (span) => {
        span.setAttributes({ 'http.request.method': method, 'server.address': u.hostname });
        const headers = tracing.inject({ ...req.headers });
        try {
          const res = await undiciRequest(u, {
            method,
            headers,
            body: req.body ?? null,
            headersTimeout: req.headersTimeoutMs ?? headersTimeout,
            bodyTimeout: req.bodyTimeoutMs ?? bodyTimeout,
            ...(req.signal ? { signal: req.signal } : {}),
          });
          span.setAttribute('http.response.status_code', res.statusCode);
          return res;
        } catch (err) {
          throw new KapokError(
            'KAPOK_UPSTREAM_UNAVAILABLE',
            `request to ${u.host} failed: ${(err as Error).message}`,
            {
              cause: err,
            },
          );
        }
      });
    },
  };
}

export type HttpClient = ReturnType<typeof createHttpClient>;
