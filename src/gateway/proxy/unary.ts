import { KapokError } from '../../core/errors.js';
import type { ClientResponse, UpstreamRequest } from '../providers/types.js';
import type { Target } from '../routing/router.js';
import { endSpan, readBody, readErrorBody, sendAttempt } from './attempt.js';
import { buildRequest, type Call, finish, type ProxyDeps, targetHeader, upstreamRefused } from './call.js';
import { attemptError, classify, statusOutcome } from './outcome.js';

export interface UnaryOps {
  request(t: Target): UpstreamRequest | null;
  response(t: Target, text: string): ClientResponse;
}

/**
 * A non-streaming call: attempts in plan order; connection errors, timeouts, 429 and 5xx move on to
 * the next attempt (nothing has reached the client yet); another 4xx is the caller's fault and is
 * passed on. Resolves once the reply is sent; throws the error to answer with otherwise.
 */
export async function unary(d: ProxyDeps, c: Call, ops: UnaryOps): Promise<void> {
  let last: KapokError | null = null;
  for (const t of c.plan.attempts) {
    if (c.signal.aborted) return;
    const upReq = buildRequest(d, c, t, () => ops.request(t));
    if (!upReq) continue; // this provider type lacks the endpoint
    if (!t.circuit.tryAcquire()) continue;
    const t0 = performance.now();
    let status = 0;
    let text: string;
    let span: Awaited<ReturnType<typeof sendAttempt>>['span'] | undefined;
    try {
      const open = await sendAttempt(d.tracing, t, upReq, c.signal, c.req.kapokSpan);
      span = open.span;
      status = open.res.statusCode;
      text = status < 300 ? await readBody(open.res) : await readErrorBody(open.res);
    } catch (err) {
      c.upstreamMs += performance.now() - t0;
      const outcome = classify(err, c.signal);
      if (span) endSpan(span, outcome);
      d.metrics.attempts.inc({ target: t.key, outcome });
      if (outcome === 'aborted') {
        t.circuit.release();
        finish(d, c, t, 499, null, false);
        return;
      }
      t.circuit.failure();
      last = err instanceof KapokError ? err : attemptError(t, outcome);
      d.logger.warn({ target: t.key, outcome, request_id: c.req.id }, 'upstream attempt failed');
      continue;
    }
    const ms = performance.now() - t0;
    c.upstreamMs += ms;
    d.metrics.upstreamLatency.observe({ target: t.key }, ms / 1000);
    const outcome = statusOutcome(status);
    endSpan(span, outcome);
    d.metrics.attempts.inc({ target: t.key, outcome });
    if (outcome === 'ok') {
      t.circuit.success();
      let out: ClientResponse;
      try {
        out = ops.response(t, text);
      } catch {
        last = new KapokError(
          'KAPOK_GATEWAY_UPSTREAM_FAILED',
          `upstream ${t.key} sent a body that is not valid JSON`,
        );
        continue;
      }
      targetHeader(d.cfg, c.reply, t);
      finish(d, c, t, 200, out.usage, false);
      await c.reply.code(200).type('application/json').send(out.body);
      return;
    }
    last = upstreamRefused(d, c, t, status, outcome, text);
  }
  const err =
    last ??
    new KapokError(
      'KAPOK_GATEWAY_NO_TARGET',
      `no upstream of model ${c.route.name} is available (open circuits or no provider offering this endpoint)`,
    );
  finish(d, c, null, err.status, null, false);
  throw err;
}
