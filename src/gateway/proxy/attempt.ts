import { context, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { Dispatcher } from 'undici';
import { KapokError } from '../../core/errors.js';
import type { Tracing } from '../../core/tracing.js';
import type { UpstreamErrorInfo, UpstreamRequest } from '../providers/types.js';
import type { Target } from '../routing/router.js';
import type { ClientAbort } from './call.js';

/** Largest upstream response body read into memory (non-streaming); larger is a failed attempt. */
export const MAX_RESPONSE_BYTES = 32 * 1024 * 1024;
/** Error bodies are read up to this much (enough for any error message). */
const MAX_ERROR_BYTES = 64 * 1024;

export type Outcome =
  | 'ok'
  | 'http_4xx'
  | 'http_429'
  | 'http_5xx'
  | 'timeout'
  | 'connect'
  | 'aborted'
  | 'stream_cut';

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

/** What went wrong with an attempt that threw. */
export function classify(err: unknown, clientSignal: { aborted: boolean }): Outcome {
  if (clientSignal.aborted) return 'aborted';
  const code = (err as { code?: string }).code ?? '';
  if (
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT' ||
    code === 'UND_ERR_CONNECT_TIMEOUT'
  )
    return 'timeout';
  if (
    code === 'ECONNREFUSED' ||
    code === 'ENOTFOUND' ||
    code === 'EAI_AGAIN' ||
    code === 'ECONNRESET' ||
    code === 'UND_ERR_SOCKET'
  )
    return 'connect';
  return 'connect';
}

export function statusOutcome(status: number): Outcome {
  if (status < 400) return 'ok';
  if (status === 429) return 'http_429';
  if (status >= 500) return 'http_5xx';
  return 'http_4xx';
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

/** A failed attempt as the client-facing error it becomes when no attempt is left. */
export function attemptError(
  t: Target,
  outcome: Outcome,
  info?: UpstreamErrorInfo | null,
  status?: number,
): KapokError {
  if (outcome === 'timeout') {
    return new KapokError(
      'KAPOK_GATEWAY_UPSTREAM_TIMEOUT',
      `upstream ${t.key} did not answer within ${t.upstream.timeoutMs} ms`,
    );
  }
  const what =
    outcome === 'connect'
      ? 'could not be reached'
      : `answered ${status}${info?.message ? `: ${info.message}` : ''}`;
  return new KapokError(
    'KAPOK_GATEWAY_UPSTREAM_FAILED',
    `every upstream attempt failed; last: ${t.key} ${what}`,
  );
}

/** An upstream 4xx other than 429: the client's request is at fault; pass status and message on. */
export function rejectedError(t: Target, status: number, info: UpstreamErrorInfo | null): KapokError {
  // The upstream refusing Kapok's own credentials is a gateway misconfiguration, not the caller's fault.
  if (status === 401 || status === 403) {
    return new KapokError(
      'KAPOK_GATEWAY_UPSTREAM_FAILED',
      `upstream ${t.upstream.name} refused Kapok's credentials (${status}): check gateway.providers apiKeyEnv`,
    );
  }
  return new KapokError(
    'KAPOK_GATEWAY_UPSTREAM_REJECTED',
    info?.message ?? `upstream ${t.key} answered ${status}`,
    {
      status,
      details: {
        ...(info?.type ? { type: info.type } : {}),
        ...(info?.code ? { upstreamCode: info.code } : {}),
        ...(info?.param ? { param: info.param } : {}),
      },
    },
  );
}
