import { messageOf } from '../../core/errors.js';
import type { Executor } from './types.js';

/**
 * The `http` executor: calls the task's URL with headers X-Kapok-Job, X-Kapok-Task, X-Kapok-Attempt
 * and (for POST/PUT) its body as JSON. 2xx: done; 5xx, no answer or the timeout: failure classes
 * http_5xx / timeout (retried by default); other statuses: http_error. The body's start is the output.
 */
export const httpExecutor: Executor = async (ctx) => {
  if (ctx.spec.run.executor !== 'http') throw new Error('httpExecutor takes http tasks');
  const run = ctx.spec.run;
  const signals = [ctx.signal];
  if (ctx.timeoutMs !== null) signals.push(AbortSignal.timeout(ctx.timeoutMs));
  const signal = AbortSignal.any(signals);
  try {
    const res = await fetch(run.url, {
      method: run.method,
      headers: {
        ...(run.headers ?? {}),
        'x-kapok-job': ctx.jobId,
        'x-kapok-task': ctx.task,
        'x-kapok-attempt': String(ctx.attempt),
        ...(run.method !== 'GET' ? { 'content-type': 'application/json' } : {}),
      },
      ...(run.method !== 'GET' ? { body: JSON.stringify(run.body ?? {}) } : {}),
      signal,
      redirect: 'manual',
    });
    const buf = Buffer.from(await res.arrayBuffer()).subarray(0, ctx.maxOutputBytes);
    const output = buf.toString('utf8');
    if (res.status >= 200 && res.status < 300) return { ok: true, output };
    if (res.status >= 500)
      return {
        ok: false,
        failure: { class: 'http_5xx' },
        reason: `${run.url} answered ${res.status}`,
        output,
      };
    return {
      ok: false,
      failure: { class: 'http_error' },
      reason: `${run.url} answered ${res.status}`,
      output,
    };
  } catch (err) {
    if (ctx.signal.aborted) return { ok: false, failure: { class: 'signal' }, reason: 'cancelled' };
    if (signal.aborted)
      return { ok: false, failure: { class: 'timeout' }, reason: `timed out after ${ctx.spec.timeoutS} s` };
    return { ok: false, failure: { class: 'http_5xx' }, reason: `${run.url}: no answer (${messageOf(err)})` };
  }
};
