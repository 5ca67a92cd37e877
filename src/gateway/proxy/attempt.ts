import { context, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { Dispatcher } from 'undici';
import { KapokError } from '../../core/errors.js';
import type { UpstreamRequest } from '../providers/types.js';
import type { Target } from '../routing/router.js';
import { type Call, type ProxyDeps, targetHeader } from './call.js';
import { attemptError, classify, type Outcome, rejectedError, statusOutcome } from './outcome.js';

/** Largest upstream response body read into memory (non-streaming); larger is a failed attempt. */
export const MAX_RESPONSE_BYTES = 32 * 1024 * 1024;
/** Error bodies are read up to this much (enough for any error message). */
const MAX_ERROR_BYTES = 64 * 1024;

/** What the target's circuit hears of an attempt: its three verdict methods. */
type Verdict = 'success' | 'failure' | 'release';

/**
 * One upstream attempt, from claiming a slot on the target's circuit to its end. The one owner of
 * the per-attempt bookkeeping: the circuit verdict, the CLIENT span (W3C traceparent injected), the
 * attempts metric and the time spent waiting (c.upstreamMs, the upstream latency histogram). Every
 * attempt that start() returns must end exactly once, through failed(), refused() or end().
 */
export class Attempt {
  readonly #d: ProxyDeps;
  readonly #c: Call;
  readonly #t: Target;
  readonly #t0: number;
  readonly #span: Span;
  readonly #headers: Record<string, string>;
  #status = 0;

  /** Claims a slot on the target's circuit (the one probe when half-open); null when it is open. */
  static start(d: ProxyDeps, c: Call, t: Target): Attempt | null {
    return t.circuit.tryAcquire() ? new Attempt(d, c, t) : null;
  }

  private constructor(d: ProxyDeps, c: Call, t: Target) {
    this.#d = d;
    this.#c = c;
    this.#t = t;
    this.#t0 = performance.now();
    // Parented on the request's span explicitly: there may be no context manager to find it.
    const server = c.req.kapokSpan;
    const parent = server ? trace.setSpan(context.active(), server) : context.active();
    this.#span = d.tracing.tracer.startSpan(
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
    this.#headers = d.tracing.spanHeaders(t.upstream.headers, this.#span);
  }

  /** Sends the request. A throw leaves the attempt open: end it with failed(). */
  async send(req: UpstreamRequest): Promise<Dispatcher.ResponseData> {
    const u = this.#t.upstream;
    const res = await u.pool.request({
      path: u.basePath + req.path,
      method: 'POST',
      headers: this.#headers,
      body: req.body,
      signal: this.#c.signal,
    });
    this.#status = res.statusCode;
    this.#span.setAttribute('http.response.status_code', res.statusCode);
    return res;
  }

  /** The request or its body threw: a timeout, a connection error, the client leaving. */
  failed(err: unknown): Outcome {
    const outcome = classify(err, this.#c.signal);
    this.#end(outcome, outcome === 'aborted' ? 'release' : 'failure', false);
    return outcome;
  }

  /**
   * An error answer (status >= 300), its body read. A 4xx other than 429 (and than 401/403, Kapok's
   * own credentials) is the request's fault: the target is healthy and the client's error is thrown,
   * which ends the call. Anything else is a failed attempt; its error is returned, for the caller to
   * answer with when no attempt is left. `observe`: whether the time counts as upstream latency
   * (unary calls count every answer read; streams only the streams relayed).
   */
  refused(text: string, observe: boolean): KapokError {
    const t = this.#t;
    const status = this.#status;
    const outcome = statusOutcome(status);
    const credentials = status === 401 || status === 403;
    const passOn = outcome === 'http_4xx' && !credentials;
    this.#end(outcome, passOn ? 'success' : 'failure', observe);
    const info = t.upstream.adapter.errorInfo(text);
    if (passOn) {
      targetHeader(this.#d.cfg, this.#c.reply, t);
      throw rejectedError(t, status, info);
    }
    this.#d.logger.warn({ target: t.key, status, request_id: this.#c.req.id }, 'upstream attempt failed');
    return credentials ? rejectedError(t, status, info) : attemptError(t, outcome, info, status);
  }

  /** A response read through, or a stream relayed to its end, cut off or left by the client. */
  end(outcome: Outcome): void {
    this.#end(outcome, outcome === 'ok' ? 'success' : outcome === 'aborted' ? 'release' : 'failure', true);
  }

  #end(outcome: Outcome, verdict: Verdict, observe: boolean): void {
    const { key } = this.#t;
    const ms = performance.now() - this.#t0;
    this.#c.upstreamMs += ms;
    if (observe) this.#d.metrics.upstreamLatency.observe({ target: key }, ms / 1000);
    const span = this.#span;
    span.setAttribute('kapok.gateway.outcome', outcome);
    if (outcome !== 'ok' && outcome !== 'http_4xx')
      span.setStatus({ code: SpanStatusCode.ERROR, message: outcome });
    span.end();
    this.#d.metrics.attempts.inc({ target: key, outcome });
    this.#t.circuit[verdict]();
  }
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
