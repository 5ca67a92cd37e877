import { Agent, request } from 'undici';
import { messageOf } from '../core/errors.js';
import type { RequestReply } from '../ports/request.js';
import type { SagaTarget } from './config.js';

/**
 * Branch calls and the middleware bridge: the headers each target kind gets (the gid, TongWeb's
 * session, EOS's transaction id), JSON only, one time limit per call, and the foreign answer
 * (TongWeb's error page, an EOS error object, a DTM-style {"result":"FAILURE"}) turned into one of
 * three outcomes with a catalogue code: done, refused (the branch said no: never retried forward),
 * or retry (timeout, 5xx, 408/429, connection trouble).
 */

export type CallOutcome =
  | { kind: 'ok' }
  | {
      kind: 'refused' | 'retry';
      code: 'KAPOK_SAGA_BRANCH_REFUSED' | 'KAPOK_SAGA_BRANCH_UNAVAILABLE' | 'KAPOK_SAGA_BRANCH_TIMEOUT';
      message: string;
    };

export interface BranchCall {
  gid: string;
  branch: string;
  op: string;
  target: SagaTarget;
  url: string;
  payload: unknown;
  timeoutMs: number;
  /** Headers the client submitted the transaction with, lower-case names (passthrough). */
  passHeaders: Readonly<Record<string, string>>;
}

/** Headers a kind passes through from the submitting client unless its target lists its own. */
export const KIND_PASS_HEADERS: Record<SagaTarget['kind'], readonly string[]> = {
  http: [],
  tongweb: ['x-tongweb-session'],
  eos: ['x-eos-transaction-id'],
};

export function passHeaderNames(t: SagaTarget): readonly string[] {
  return (t.passHeaders ?? KIND_PASS_HEADERS[t.kind]).map((h) => h.toLowerCase());
}

/** The headers of one branch call: ours, the target's static ones, then the passthrough ones. */
export function callHeaders(c: BranchCall): Record<string, string> {
  const h: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/json',
    'x-kapok-saga-gid': c.gid,
    'x-kapok-saga-branch': c.branch,
    'x-kapok-saga-op': c.op,
  };
  for (const [k, v] of Object.entries(c.target.headers)) h[k.toLowerCase()] = v;
  for (const k of passHeaderNames(c.target)) {
    const v = c.passHeaders[k];
    if (v !== undefined) h[k] = v;
  }
  // An EOS TM keys its work on X-EOS-Transaction-ID: the client's, else the gid.
  if (c.target.kind === 'eos') h['x-eos-transaction-id'] ??= c.gid;
  return h;
}

export interface Transport {
  call(c: BranchCall): Promise<CallOutcome>;
  close(): Promise<void>;
}

export function createTransport(o: {
  maxResponseBytes: number;
  nats: RequestReply | null;
  connections?: number;
}): Transport {
  // A few connections per origin, requests queued behind them: opening hundreds at once on a busy
  // host made calls time out in connect (measured: 300 concurrent calls, 256 connections).
  const agent = new Agent({
    connections: o.connections ?? 32,
    keepAliveTimeout: 10_000,
    pipelining: 1,
    connect: { timeout: 10_000 },
  });
  return {
    async call(c) {
      const body = JSON.stringify(c.payload ?? {});
      const headers = callHeaders(c);
      if (c.url.startsWith('nats://')) {
        if (!o.nats)
          return { kind: 'retry', code: 'KAPOK_SAGA_BRANCH_UNAVAILABLE', message: 'saga.natsUrl is not set' };
        const r = await o.nats.request(c.url.slice('nats://'.length), Buffer.from(body), {
          timeoutMs: c.timeoutMs,
          headers,
        });
        if (r.kind === 'timeout') return timedOut(c);
        if (r.kind === 'unavailable')
          return {
            kind: 'retry',
            code: 'KAPOK_SAGA_BRANCH_UNAVAILABLE',
            message: `${c.target.name}: ${r.reason}`,
          };
        const status = Number(r.headers['Kapok-Saga-Status'] ?? r.headers['kapok-saga-status'] ?? 200);
        return classify(
          c.target,
          Number.isInteger(status) ? status : 200,
          Buffer.from(r.data).toString('utf8').slice(0, o.maxResponseBytes),
          'application/json',
        );
      }
      try {
        const res = await request(c.url, {
          method: 'POST',
          headers,
          body,
          dispatcher: agent,
          headersTimeout: c.timeoutMs,
          bodyTimeout: c.timeoutMs,
          // undici's own timers are coarse (a late answer got through): the signal holds the limit,
          // counted from the call (waiting behind the connection limit included).
          signal: AbortSignal.timeout(c.timeoutMs),
        });
        const text = await readLimited(res.body, o.maxResponseBytes);
        return classify(c.target, res.statusCode, text, String(res.headers['content-type'] ?? ''));
      } catch (err) {
        const e = err as Error & { code?: string };
        if (e.name === 'TimeoutError' || e.name === 'AbortError' || /TIMEOUT/.test(e.code ?? ''))
          return timedOut(c);
        return {
          kind: 'retry',
          code: 'KAPOK_SAGA_BRANCH_UNAVAILABLE',
          message: `${c.target.name}: ${e.code ?? 'error'} ${messageOf(err).slice(0, 160)}`,
        };
      }
    },
    close: () => agent.close(),
  };
}

function timedOut(c: BranchCall): CallOutcome {
  return {
    kind: 'retry',
    code: 'KAPOK_SAGA_BRANCH_TIMEOUT',
    message: `${c.target.name} (${c.target.kind}) did not answer ${c.op} within ${c.timeoutMs} ms`,
  };
}

async function readLimited(
  body: AsyncIterable<Buffer> & { destroy?: () => void },
  max: number,
): Promise<string> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of body) {
    parts.push(chunk);
    n += chunk.length;
    if (n >= max) {
      body.destroy?.();
      break;
    }
  }
  return Buffer.concat(parts).toString('utf8').slice(0, max);
}

/** The outcome of an answer: the status first, then a failure the body reports under a 2xx. */
export function classify(t: SagaTarget, status: number, text: string, contentType: string): CallOutcome {
  const json = /json/i.test(contentType) || /^\s*[{[]/.test(text) ? parseJson(text) : undefined;
  const said = foreignMessage(t, json, text, contentType);
  if (status >= 200 && status < 300) {
    if (!reportsFailure(t, json)) return { kind: 'ok' };
    return {
      kind: 'refused',
      code: 'KAPOK_SAGA_BRANCH_REFUSED',
      message: `${t.name} refused (${status})${said}`,
    };
  }
  const retry = status >= 500 || status === 408 || status === 425 || status === 429 || status < 200;
  return retry
    ? { kind: 'retry', code: 'KAPOK_SAGA_BRANCH_UNAVAILABLE', message: `${t.name} answered ${status}${said}` }
    : { kind: 'refused', code: 'KAPOK_SAGA_BRANCH_REFUSED', message: `${t.name} refused (${status})${said}` };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const str = (v: unknown) =>
  typeof v === 'string' || typeof v === 'number' ? String(v).slice(0, 120) : undefined;

/** A 2xx that still says no: DTM's {"result":"FAILURE"}, an EOS TM's {"status":"FAIL"|"ERROR"} or {"success":false}. */
function reportsFailure(t: SagaTarget, json: unknown): boolean {
  if (!json || typeof json !== 'object') return false;
  const j = json as Record<string, unknown>;
  if (j.result === 'FAILURE') return true;
  if (t.kind === 'eos') return j.success === false || /^(FAIL|FAILED|ERROR)$/i.test(String(j.status ?? ''));
  return false;
}

/** What the far side said, in its own shape, as ": <code> <message>" (never more than ~250 chars). */
function foreignMessage(t: SagaTarget, json: unknown, text: string, contentType: string): string {
  if (json && typeof json === 'object') {
    const j = json as Record<string, unknown>;
    const e = (j.error && typeof j.error === 'object' ? j.error : j) as Record<string, unknown>;
    // TongWeb: {errorCode, errorMessage}; EOS: {code|errCode, message|errMsg}; Kapok/OpenAI: {error:{code,message}}.
    const code = str(e.errorCode) ?? str(e.errCode) ?? str(e.code);
    const msg = str(e.errorMessage) ?? str(e.errMsg) ?? str(e.message) ?? str(e.result);
    const parts = [code, msg].filter(Boolean);
    return parts.length ? `: ${parts.join(' ')}` : '';
  }
  if (/html/i.test(contentType) || /^\s*</.test(text)) {
    const title = /<title>([^<]{0,120})<\/title>/i.exec(text)?.[1];
    return `: ${t.kind === 'tongweb' ? 'TongWeb' : 'an'} HTML error page${title ? ` (${title.trim()})` : ''}`;
  }
  return text ? `: ${text.replace(/\s+/g, ' ').slice(0, 120)}` : '';
}
