import { parentPort } from 'node:worker_threads';
import type { TensorMeta } from '../tensors/datatypes.js';
import { checkDepth, parseInferBody, splitBody } from './rest-body.js';

/**
 * Decodes large REST infer bodies off the event loop: JSON text → checked tensors, whose buffers
 * are transferred back. Small bodies are cheaper to parse in place (see body-decoder.ts).
 */

export interface DecodeRequest {
  seq: number;
  body: ArrayBuffer;
  inputs: TensorMeta[];
  maxBatch: number;
  headerLength: string | undefined;
}

export type DecodeResponse =
  | { seq: number; ok: true; parsed: ReturnType<typeof parseInferBody> }
  | { seq: number; ok: false; message: string; badRequest: boolean };

if (!parentPort) throw new Error('body-decoder-worker must run as a worker thread');
const port = parentPort;
const text = new TextDecoder('utf-8', { fatal: false });

port.on('message', (req: DecodeRequest) => {
  let body: unknown;
  let binary: Buffer | undefined;
  try {
    const split = splitBody(Buffer.from(req.body), req.headerLength);
    binary = split.binary;
    const json = text.decode(split.json);
    body = JSON.parse(json);
    checkDepth(json, body);
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e.code === 'KAPOK_INFERENCE_BAD_REQUEST') {
      port.postMessage({
        seq: req.seq,
        ok: false,
        message: e.message,
        badRequest: true,
      } satisfies DecodeResponse);
      return;
    }
    port.postMessage({
      seq: req.seq,
      ok: false,
      message: `request body is not valid JSON: ${(err as Error).message}`,
      badRequest: true,
    } satisfies DecodeResponse);
    return;
  }
  try {
    const parsed = parseInferBody(body, req.inputs, req.maxBatch, binary);
    const transfer = parsed.tensors.flatMap((t) => (t.data instanceof ArrayBuffer ? [t.data] : []));
    port.postMessage({ seq: req.seq, ok: true, parsed } satisfies DecodeResponse, transfer);
  } catch (err) {
    const e = err as Error & { code?: string };
    port.postMessage({
      seq: req.seq,
      ok: false,
      message: e.message,
      badRequest: e.code === 'KAPOK_INFERENCE_BAD_REQUEST',
    } satisfies DecodeResponse);
  }
});
