import { KapokError } from '../../core/errors.js';
import type { UpstreamErrorInfo } from '../providers/types.js';
import type { Target } from '../routing/router.js';

/** How an upstream attempt ended: the `outcome` label of the attempts metric and span attribute. */
export type Outcome =
  | 'ok'
  | 'http_4xx'
  | 'http_429'
  | 'http_5xx'
  | 'timeout'
  | 'connect'
  | 'aborted'
  | 'stream_cut';

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
