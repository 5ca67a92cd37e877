import { context, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { Dispatcher } from 'undici';
import { KapokError } from '../../core/errors.js';
import type { Tracing } from '../../core/tracing.js';
import type { UpstreamRequest } from '../providers/types.js';
import type { Target } from '../routing/router.js';
import type { ClientAbort } from './call.js';
import { classify, type Outcome } from './outcome.js';

/** Largest upstream response body read into memory (non-streaming); larger is a failed attempt. */
export const MAX_RESPONSE_BYTES = 32 * 1024 * 1024;
/** Error bodies are read up to this much (enough for any error message). */
const MAX_ERROR_BYTES = 64 * 1024;

export interface OpenAttempt {
  res: Dispatcher.ResponseData;
  span: Span;
}

/** Sends one upstream request inside a CLIENT span (W3C traceparent injected). */
export async function sendAttempt(
  tracing: Tracing,
  t: Target,
  req: UpstreamRequest,
  signal: ClientAbort,
  serverSpan: Span | undefined,
): Promise<OpenAttempt> {
  // Parented on the request's span explicitly: there may be no context manager to find it.
  const parent = serverSpan ? trace.setSpan(context.active(), serverSpan) : context.active();
  const span = tracing.tracer.startSpan(
    `gateway upstream ${t.key}`,
    {
      kind: SpanKind.CLIENT,
      attributes: {
        'gen_ai.request.model': t.model,
        'kapok.gateway.target': t.key,
        'server.address': t.upstream.origin,
      },
    },
    parent,
  );
  const headers = tracing.inject({ ...t.upstream.headers }, trace.setSpan(parent, span));
  try {
    const res = await t.upstream.pool.request({
      path: t.upstream.basePath + req.path,
      method: 'POST',
      headers,
      body: req.body,
      signal,
    });
    span.setAttribute('http.response.status_code', res.statusCode);
    return { res, span };
  } catch (err) {
    endSpan(span, classify(err, signal));
    throw err;
  }
}

export function endSpan(span: Span, outcome: Outcome): void {
  span.setAttribute('kapok.gateway.outcome', outcome);
  if (outcome !== 'ok' && outcome !== 'http_4xx')
    span.setStatus({ code: SpanStatusCode.ERROR, message: outcome });
  span.end();
}

/** Reads a body up to `max` bytes; beyond it the body is destroyed and an error thrown. */
export async function readBody(
  res: Pick<Dispatcher.ResponseData, 'body' | 'headers'>,
  max = MAX_RESPONSE_BYTES,
): Promise<string> {
  const { body } = res;
  // With a Content-Length within the cap undici's text() is the fast path (no async iterator).
  const length = Number(res.headers['content-length']);
  if (Number.isInteger(length) && length <= max) return body.text();
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += (c as Buffer).length;
    if (n > max) {
      body.destroy();
      throw new KapokError('KAPOK_GATEWAY_UPSTREAM_FAILED', `upstream response larger than ${max} bytes`);
    }
    chunks.push(c as Buffer);
  }
  return chunks.length === 1
    ? (chunks[0] as Buffer).toString('utf8')
    : Buffer.concat(chunks).toString('utf8');
}

/** The upstream's error text (bounded); never throws. */
export async function readErrorBody(res: Pick<Dispatcher.ResponseData, 'body' | 'headers'>): Promise<string> {
  try {
    return await readBody(res, MAX_ERROR_BYTES);
  } catch {
    return '';
  }
}
