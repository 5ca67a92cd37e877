import { PassThrough } from 'node:stream';
import type { Dispatcher } from 'undici';
import { KapokError } from '../../core/errors.js';
import type { ChatRequest, StreamTranslator, UpstreamRequest, Usage } from '../providers/types.js';
import type { Target } from '../routing/router.js';
import { Attempt, readErrorBody } from './attempt.js';
import { type Call, clientModel, Ending, finish, type ProxyDeps, targetHeader } from './call.js';
import { attemptError, classify, type Outcome } from './outcome.js';
import { SseParser } from './sse.js';

export const DONE = 'data: [DONE]\n\n';

/** A chat completions (or completions) payload as SSE. */
export const dataFrame = (o: string): string => `data: ${o}\n\n`;

/** The error event ending a chat stream broken off after data went out (the SDKs raise it). */
export function chatCut(why: string): string {
  const event = {
    error: { message: why, type: 'server_error', code: 'KAPOK_GATEWAY_STREAM_INTERRUPTED', param: null },
  };
  return `event: error\ndata: ${JSON.stringify(event)}\n\n`;
}

/**
 * What a streaming endpoint plugs into the attempt loop: the upstream request per target and the
 * translation of upstream events into the client's SSE frames. Chat completions frame each payload
 * as `data:` and end with [DONE]; the Responses and Messages ingresses frame typed events.
 */
export interface StreamOps {
  /** The upstream request for `t`; null when t's provider lacks the endpoint (the target is skipped). */
  request(t: Target): UpstreamRequest | null;
  /** A fresh translator for one attempt; its `out` entries are payloads for frame(). */
  translator(t: Target): StreamTranslator;
  /** One payload as SSE text. */
  frame(payload: string): string;
  /** Written after the last payload of a completed stream. */
  end: string;
  /** The event that ends a stream broken off after data went out (never a clean end). */
  cut(why: string): string;
}

/**
 * A streaming chat call. Upstream SSE events are translated and written to the client as they
 * arrive (no buffering beyond one upstream chunk). The response is committed with the first chunk
 * that has something for the client: until then a failure moves on to the next attempt; after it,
 * nothing is retried and a broken upstream ends the client stream with an error event, never
 * with a clean [DONE]. A client that goes away aborts the upstream request.
 */
export async function stream(d: ProxyDeps, c: Call, body: ChatRequest): Promise<void> {
  const includeUsage = body.stream_options?.include_usage === true;
  return streamWith(d, c, {
    request: (t) => t.upstream.adapter.chatRequest(body, t.model),
    translator: (t) => t.upstream.adapter.chatStream({ includeUsage, clientModel: clientModel(d.cfg, c, t) }),
    frame: dataFrame,
    end: DONE,
    cut: chatCut,
  });
}

/** A streaming call with the endpoint's own request and framing (see StreamOps). */
export async function streamWith(d: ProxyDeps, c: Call, ops: StreamOps): Promise<void> {
  const e = new Ending();
  try {
    await attempts(d, c, ops, e);
  } catch (err) {
    e.threw(err);
    throw err;
  } finally {
    finish(d, c, e, true);
  }
}

/** Ends the client stream (or throws the error to answer with); fills in `e`. */
async function attempts(d: ProxyDeps, c: Call, ops: StreamOps, e: Ending): Promise<void> {
  let last: KapokError | null = null;
  let out: PassThrough | null = null;

  for (const t of c.plan.attempts) {
    if (c.signal.aborted) {
      e.target = null;
      return;
    }
    e.target = t; // a transform refusing the body throws: the call ends, charged to t
    const upReq = ops.request(t);
    if (!upReq) continue; // this provider type lacks the endpoint
    const a = Attempt.start(d, c, t);
    if (!a) continue; // open circuit
    let res: Dispatcher.ResponseData;
    try {
      res = await a.send(upReq);
    } catch (err) {
      const outcome = a.failed(err);
      if (outcome === 'aborted') return;
      last = attemptError(t, outcome);
      continue;
    }
    if (res.statusCode >= 300) {
      last = a.refused(await readErrorBody(res), false); // throws a 4xx that is the request's fault
      continue;
    }

    const parser = new SseParser();
    const tr = ops.translator(t);
    let usage: Usage | null = null;
    let done = false;
    let upstreamError: string | null = null;
    let contentChunks = 0;
    let failure: unknown = null;
    try {
      for await (const chunk of res.body) {
        let text = '';
        for (const ev of parser.push(chunk as Buffer)) {
          const step = tr.push(ev);
          for (const o of step.out) text += ops.frame(o);
          contentChunks += step.out.length;
          if (step.usage) usage = step.usage;
          if (step.error !== undefined) upstreamError = step.error;
          if (step.done) done = true;
          if (done || upstreamError !== null) break;
        }
        if (text) {
          if (!out) out = commit(d, c, t);
          if (!out.write(text)) await c.signal.drain(out);
        }
        if (done || upstreamError !== null) break;
      }
    } catch (err) {
      failure = err;
    }
    if (c.signal.aborted) {
      a.end('aborted');
      // The client left: charge what was streamed (prompt estimate + one token per chunk).
      e.usage = usage ?? estimate(c, contentChunks);
      out?.destroy();
      return;
    }
    if (done) {
      a.end('ok');
      if (!out) out = commit(d, c, t);
      out.end(ops.end);
      e.status = 200;
      e.usage = usage;
      return;
    }
    // Broken off: an upstream error event, a socket error or timeout, or an end without [DONE].
    const outcome: Outcome = failure ? classify(failure, c.signal) : 'stream_cut';
    a.end(outcome === 'connect' ? 'stream_cut' : outcome);
    const why =
      upstreamError !== null
        ? `upstream ${t.key} reported an error mid-stream: ${upstreamError.slice(0, 500)}`
        : outcome === 'timeout'
          ? `upstream ${t.key} sent nothing for ${t.upstream.timeoutMs} ms mid-stream`
          : `upstream ${t.key} stream ended before completion`;
    if (!out) {
      // Nothing reached the client yet: the next attempt may still answer. A timeout is a 504, as
      // for a unary call whose body stalls.
      last = new KapokError(
        outcome === 'timeout' ? 'KAPOK_GATEWAY_UPSTREAM_TIMEOUT' : 'KAPOK_GATEWAY_UPSTREAM_FAILED',
        why,
      );
      continue;
    }
    d.logger.warn(
      { target: t.key, request_id: c.req.id, outcome },
      'upstream stream broke off after data was sent',
    );
    out.end(ops.cut(why));
    e.status = 502;
    e.usage = usage ?? estimate(c, contentChunks);
    return;
  }
  e.target = null;
  throw (
    last ?? new KapokError('KAPOK_GATEWAY_NO_TARGET', `no upstream of model ${c.route.name} is available`)
  );
}

/** Sends the 200 and SSE headers; from here on the response belongs to this target. */
function commit(d: ProxyDeps, c: Call, t: Target): PassThrough {
  const out = new PassThrough();
  targetHeader(d.cfg, c.reply, t);
  c.reply
    .code(200)
    .header('content-type', 'text/event-stream; charset=utf-8')
    .header('cache-control', 'no-cache')
    .header('x-accel-buffering', 'no') // nginx in front must not buffer the stream
    .send(out);
  d.metrics.ttft.observe({ model: c.route.name, target: t.key }, (performance.now() - c.startedAt) / 1000);
  return out;
}

function estimate(c: Call, chunks: number): Usage {
  return { prompt_tokens: c.promptTokens, completion_tokens: chunks, total_tokens: c.promptTokens + chunks };
}
