import { KapokError } from '../../core/errors.js';
import type { ClientResponse, UpstreamRequest } from '../providers/types.js';
import type { Target } from '../routing/router.js';
import { Attempt, readBody, readErrorBody } from './attempt.js';
import { type Call, Ending, finish, type ProxyDeps, targetHeader } from './call.js';
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
  const e = new Ending();
  let out: ClientResponse | null = null;
  try {
    out = await attempts(d, c, ops, e);
  } catch (err) {
    e.threw(err);
    throw err;
  } finally {
    finish(d, c, e, false);
  }
  // Recorded before the answer goes out, so a client that reads its usage next finds this call.
  if (out) await c.reply.code(200).type('application/json').send(out.body);
}

/** The answer to send, or null when the client went away; fills in `e`. */
async function attempts(d: ProxyDeps, c: Call, ops: UnaryOps, e: Ending): Promise<ClientResponse | null> {
  let last: KapokError | null = null;
  for (const t of c.plan.attempts) {
    if (c.signal.aborted) {
      e.target = null;
      return null;
    }
    e.target = t; // a transform refusing the body throws: the call ends, charged to t
    const upReq = ops.request(t);
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
      if (outcome === 'aborted') return null;
      last = err instanceof KapokError ? err : attemptError(t, outcome);
      d.logger.warn({ target: t.key, outcome, request_id: c.req.id }, 'upstream attempt failed');
      continue;
    }
    if (status >= 400) {
      last = a.refused(text, true); // throws a 4xx that is the request's fault
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
    e.status = 200;
    e.usage = out.usage;
    return out;
  }
  e.target = null;
  throw (
    last ??
    new KapokError(
      'KAPOK_GATEWAY_NO_TARGET',
      `no upstream of model ${c.route.name} is available (open circuits or no provider offering this endpoint)`,
    )
  );
}
