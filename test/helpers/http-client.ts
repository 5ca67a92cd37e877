import { context, type Span, SpanStatusCode, trace } from '@opentelemetry/api';
import { type Dispatcher, request as undiciRequest } from 'undici';
import { KapokError } from '../../src/core/errors.js';
import { SpanKind, type Tracing } from '../../src/core/tracing.js';

export interface OutgoingRequest {
  method?: Dispatcher.HttpMethod;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  /** Time to the response headers (ms). */
  headersTimeoutMs?: number;
  /** Longest gap between body chunks (ms). */
  bodyTimeoutMs?: number;
  signal?: AbortSignal;
  /**
   * The span this call belongs to, usually the request's `req.kapokSpan`. Without an exporter there
   * is no async context manager, so the active span cannot be found implicitly: pass it to keep the
   * caller's trace id on the outgoing call.
   */
  parent?: Span;
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
    async request(url: string | URL, req: OutgoingRequest = {}): Promise<Dispatcher.ResponseData> {
      const u = typeof url === 'string' ? new URL(url) : url;
      const method = req.method ?? 'GET';
      // Span name carries host only: paths and queries may hold ids or keys.
      const parent = req.parent ? trace.setSpan(context.active(), req.parent) : context.active();
      const span = tracing.tracer.startSpan(
        `${method} ${u.host}`,
        {
          kind: SpanKind.CLIENT,
          attributes: { 'http.request.method': method, 'server.address': u.hostname },
        },
        parent,
      );
      const headers = tracing.inject({ ...req.headers }, trace.setSpan(parent, span));
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
        span.recordException(err as Error);
        span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
        throw new KapokError(
          'KAPOK_UPSTREAM_UNAVAILABLE',
          `request to ${u.host} failed: ${(err as Error).message}`,
          {
            cause: err,
          },
        );
      } finally {
        span.end();
      }
    },
  };
}

export type HttpClient = ReturnType<typeof createHttpClient>;
