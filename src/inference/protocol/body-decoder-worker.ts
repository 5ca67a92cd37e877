import { parentPort } from 'node:worker_threads';
import type { TensorMeta } from '../tensors/datatypes.js';
import { type ParsedInfer, parseBodyBytes, splitBody } from './rest-body.js';

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
  | { seq: number; ok: true; parsed: ParsedInfer }
  | { seq: number; ok: false; message: string; badRequest: boolean };

if (!parentPort) throw new Error('body-decoder-worker must run as a worker thread');
const port = parentPort;

port.on('message', (req: DecodeRequest) => {
  try {
    const { json, binary } = splitBody(Buffer.from(req.body), req.headerLength);
    const parsed = parseBodyBytes(json, req.inputs, req.maxBatch, binary);
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
