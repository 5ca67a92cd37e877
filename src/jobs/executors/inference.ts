import { createReadStream } from 'node:fs';
import { open, rename, rm, stat, truncate } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { KapokError, messageOf } from '../../core/errors.js';
import type { InferencePort } from '../../ports/inference.js';
import type { Failure } from '../core.js';
import { type Executor, Tail } from './types.js';

/**
 * The `inference` executor (docs/jobs.md#executors-inference): batch inference on a model of the
 * inference capability, through its port (ports/inference.ts), so the jobs capability never
 * imports the inference one. One request inline, or `inputFile` (JSON lines, one OIP request
 * each) run in order; the answers, one JSON line each, go to `outputFile` (written to
 * `<outputFile>.partial`, renamed when the last one is in) or to the attempt's output.
 *
 * With `checkpoint.everyS` and an outputFile, progress is reported as a checkpoint (lines done,
 * bytes of the partial file) at most that often; a retried attempt cuts the partial file back to
 * the checkpoint and goes on from the next line, so no request runs twice into the output.
 */

/** Longest request line read from inputFile. */
const MAX_LINE = 16 * 1024 * 1024;

/** Inference errors as the failure classes retryOn knows. */
function failureOf(err: unknown): Failure {
  const status = err instanceof KapokError ? err.status : 500;
  if (status === 504) return { class: 'timeout' };
  return { class: status >= 500 ? 'http_5xx' : 'http_error' };
}

export function inferenceExecutor(port: InferencePort): Executor {
  return async (ctx) => {
    const run = ctx.spec.run;
    if (run.executor !== 'inference') throw new Error('inferenceExecutor takes inference tasks');
    const tail = new Tail(ctx.maxOutputBytes);
    const timeout = ctx.timeoutMs === null ? null : Date.now() + ctx.timeoutMs;
    const partial = run.outputFile ? `${run.outputFile}.partial` : null;
    // Resume: the checkpoint says how many lines (and bytes of the partial file) are done.
    let done = 0;
    let bytes = 0;
    if (partial && ctx.checkpoint?.data) {
      try {
        const c = JSON.parse(ctx.checkpoint.data.toString('utf8')) as { done?: unknown; bytes?: unknown };
        if (Number.isSafeInteger(c.done) && Number.isSafeInteger(c.bytes)) {
          const size = await stat(partial).then(
            (s) => s.size,
            () => -1,
          );
          if (size >= (c.bytes as number)) {
            done = c.done as number;
            bytes = c.bytes as number;
            await truncate(partial, bytes);
          }
        }
      } catch {
        // Not ours: start over.
      }
    }
    const out = partial ? await open(partial, done > 0 ? 'r+' : 'w') : null;
    let lastCkpt = performance.now();
    let at = 1; // the request (line) in progress, for messages
    const one = async (request: unknown): Promise<void> => {
      if (ctx.signal.aborted) throw new KapokError('KAPOK_JOBS_CONFLICT', 'cancelled');
      if (timeout !== null && Date.now() > timeout)
        throw new KapokError('KAPOK_INFERENCE_TIMEOUT', `timed out after ${ctx.spec.timeoutS} s`);
      const answer = `${JSON.stringify(await port.infer(run.model, run.version, request))}\n`;
      if (!out) return tail.push(Buffer.from(answer));
      const b = Buffer.from(answer);
      await out.write(b, 0, b.length, bytes);
      bytes += b.length;
      done = at; // lines of inputFile done (blank ones included)
      const every = ctx.spec.checkpoint?.everyS;
      if (every !== undefined && performance.now() - lastCkpt >= every * 1000) {
        lastCkpt = performance.now();
        await out.datasync();
        await ctx.onCheckpoint({ data: Buffer.from(JSON.stringify({ done, bytes })) });
      }
    };
    try {
      if (run.request !== undefined) await one(run.request);
      else {
        const lines = createInterface({
          input: createReadStream(run.inputFile as string),
          crlfDelay: Infinity,
        });
        let i = 0;
        for await (const line of lines) {
          i++;
          if (line.trim() === '' || i <= done) continue;
          at = i;
          if (line.length > MAX_LINE)
            throw new KapokError(
              'KAPOK_INFERENCE_BAD_REQUEST',
              `${run.inputFile} line ${i}: over ${MAX_LINE} bytes`,
            );
          let request: unknown;
          try {
            request = JSON.parse(line);
          } catch {
            throw new KapokError(
              'KAPOK_INFERENCE_BAD_REQUEST',
              `${run.inputFile} line ${i}: not JSON (one request object per line)`,
            );
          }
          await one(request);
        }
      }
      if (out && partial) {
        await out.truncate(bytes);
        await out.close();
        await rename(partial, run.outputFile as string);
        tail.push(Buffer.from(`answers in ${run.outputFile} (${bytes} bytes)\n`));
      }
      return { ok: true, output: tail.text() };
    } catch (err) {
      await out?.close().catch(() => {});
      if (ctx.signal.aborted)
        return { ok: false, failure: { class: 'signal' }, reason: 'cancelled', output: tail.text() };
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !(err instanceof KapokError)) {
        if (partial && done === 0) await rm(partial, { force: true });
        return {
          ok: false,
          failure: { class: 'spawn' },
          reason: `cannot read ${run.inputFile}: ${messageOf(err)}`,
          output: tail.text(),
        };
      }
      return {
        ok: false,
        failure: failureOf(err),
        reason: `${run.model}${run.version ? ` v${run.version}` : ''}, ${run.request !== undefined ? 'the request' : `${run.inputFile} line ${at}`}: ${messageOf(err)}`,
        output: tail.text(),
      };
    }
  };
}
