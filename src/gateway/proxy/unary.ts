import { KapokError } from '../../core/errors.js';
import type { ClientResponse, UpstreamRequest } from '../providers/types.js';
import type { Target } from '../routing/router.js';
import { Attempt, readBody, readErrorBody } from './attempt.js';
import { buildRequest, type Call, finish, type ProxyDeps, targetHeader } from './call.js';
import { attemptError } from './outcome.js';

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
    const a = Attempt.start(d, c, t);
    if (!a) continue; // open circuit
    let status: number;
    let text: string;
    try {
      const res = await a.send(upReq);
      status = res.statusCode;
      text = status < 300 ? await readBody(res) : await readErrorBody(res);
    } catch (err) {
      const outcome = a.failed(err);
      if (outcome === 'aborted') {
        finish(d, c, t, 499, null, false);
        return;
      }
      last = err instanceof KapokError ? err : attemptError(t, outcome);
      d.logger.warn({ target: t.key, outcome, request_id: c.req.id }, 'upstream attempt failed');
      continue;
    }
    if (status >= 400) {
      last = a.refused(text, true);
      continue;
    }
    a.end('ok');
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
  const err =
    last ??
    new KapokError(
      'KAPOK_GATEWAY_NO_TARGET',
      `no upstream of model ${c.route.name} is available (open circuits or no provider offering this endpoint)`,
    );
  finish(d, c, null, err.status, null, false);
  throw err;
}
