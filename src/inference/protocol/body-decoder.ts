import type { Worker } from 'node:worker_threads';
import { KapokError } from '../../core/errors.js';
import { startWorker } from '../../core/worker.js';
import type { TensorMeta } from '../tensors/datatypes.js';
import type { DecodeRequest, DecodeResponse } from './body-decoder-worker.js';
import { type ParsedInfer, parseBodyBytes, splitBody } from './rest-body.js';

/**
 * REST infer bodies of `threshold` bytes or more are parsed on a decoder thread, so a stream of
 * large JSON tensors (images as numbers) does not hold the event loop for milliseconds each;
 * smaller ones are parsed in place, where the thread hop would cost more than the parse.
 */

export interface DecoderOptions {
  threshold: number;
  /** Bodies being decoded or waiting at most; more get 429. */
  maxPending: number;
}

export class BodyDecoder {
  private worker: Worker | null = null;
  private seq = 0;
  private readonly waiting = new Map<number, { resolve(p: ParsedInfer): void; reject(e: Error): void }>();
  private closed = false;

  constructor(private readonly opts: DecoderOptions) {}

  /** `headerLength`: the Inference-Header-Content-Length header (binary tensor extension), if sent. */
  async decode(
    body: Buffer,
    inputs: TensorMeta[],
    maxBatch: number,
    headerLength?: string,
  ): Promise<ParsedInfer> {
    if (body.length < this.opts.threshold || this.closed) {
      const { json, binary } = splitBody(body, headerLength);
      return parseBodyBytes(json, inputs, maxBatch, binary);
    }
    if (this.waiting.size >= this.opts.maxPending)
      throw new KapokError(
        'KAPOK_INFERENCE_QUEUE_FULL',
        `${this.opts.maxPending} request bodies are being decoded; retry later`,
      );
    const worker = this.ensureWorker();
    worker.ref();
    const seq = ++this.seq;
    // A copy only when the Buffer is a view into a larger (pooled) allocation.
    const whole = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength;
    const bytes = (
      whole ? body.buffer : body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength)
    ) as ArrayBuffer;
    return new Promise((resolve, reject) => {
      this.waiting.set(seq, { resolve, reject });
      worker.postMessage({ seq, body: bytes, inputs, maxBatch, headerLength } satisfies DecodeRequest, [
        bytes,
      ]);
    });
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const w = startWorker(import.meta.url, 'body-decoder-worker', {
      resourceLimits: { maxOldGenerationSizeMb: 1024 },
    });
    w.on('message', (res: DecodeResponse) => {
      const p = this.waiting.get(res.seq);
      if (!p) return;
      this.waiting.delete(res.seq);
      if (this.waiting.size === 0) w.unref();
      if (res.ok) p.resolve(res.parsed);
      else
        p.reject(
          new KapokError(res.badRequest ? 'KAPOK_INFERENCE_BAD_REQUEST' : 'KAPOK_INTERNAL', res.message),
        );
    });
    const died = (why: string) => {
      if (this.worker !== w) return;
      this.worker = null;
      for (const p of this.waiting.values())
        p.reject(new KapokError('KAPOK_INTERNAL', `request decoder died: ${why}`));
      this.waiting.clear();
    };
    w.on('error', (err) => died(err.message));
    w.on('exit', (code) => died(`exited with code ${code}`));
    w.ref();
    this.worker = w;
    return w;
  }

  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    this.worker = null;
    await w?.terminate();
  }
}
