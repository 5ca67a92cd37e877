import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import {
  DATATYPES,
  type Datatype,
  datatypeOfOrt,
  type TensorMeta,
  type WireTensor,
} from '../tensors/datatypes.js';

/**
 * One ONNX Runtime session on its own thread: `session.run()` blocks the thread it runs on, so the
 * HTTP/gRPC event loop never calls it. Tensors arrive and leave as transferred ArrayBuffers. A batch
 * of requests is concatenated along the first dimension, run once and split back per request.
 */

export interface WorkerInit {
  file: string;
  intraOpThreads: number;
}

export interface RunPart {
  inputs: WireTensor[];
  /** Outputs to return; empty: all. */
  outputs: string[];
}

export type ToWorker =
  | { type: 'run'; seq: number; parts: RunPart[] }
  /** Test hooks: block the thread (a slow model), or die with an uncaught error (a crash). */
  | { type: 'stall'; ms: number }
  | { type: 'crash' };

export type FromWorker =
  | { type: 'ready'; inputs: TensorMeta[]; outputs: TensorMeta[] }
  | { type: 'load-failed'; message: string }
  | { type: 'result'; seq: number; parts: WireTensor[][]; computeMs: number }
  | { type: 'failed'; seq: number; message: string };

function meta(m: readonly ort.InferenceSession.ValueMetadata[]): TensorMeta[] {
  return m.map((v) => {
    if (!v.isTensor) throw new Error(`${v.name}: only tensor inputs and outputs are supported`);
    const datatype = datatypeOfOrt(v.type);
    if (!datatype) throw new Error(`${v.name}: ONNX element type ${v.type} is not supported`);
    return { name: v.name, datatype, shape: v.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)) };
  });
}

function toOrt(t: WireTensor): ort.Tensor {
  const info = DATATYPES[t.datatype];
  if (t.datatype === 'BYTES') return new ort.Tensor('string', t.data as string[], t.shape);
  const ctor = info.ctor as NonNullable<typeof info.ctor>;
  const buf = t.data as ArrayBuffer;
  // biome-ignore lint/suspicious/noExplicitAny: ORT's Tensor overloads are keyed by the type literal
  return new ort.Tensor(info.ort as any, new ctor(buf, 0, buf.byteLength / info.size) as any, t.shape);
}

/** Copies a tensor's elements [from, to) (in first-dimension rows) out as a wire tensor. */
function slice(
  name: string,
  t: ort.Tensor,
  datatype: Datatype,
  from: number,
  to: number,
  rows: number | null,
): WireTensor {
  const shape = t.dims.slice();
  // rows null: the whole tensor (an unbatched run).
  const perRow = rows === null ? t.size : rows === 0 ? 0 : t.size / rows;
  if (rows !== null) shape[0] = to - from;
  if (datatype === 'BYTES') {
    const all = t.data as string[];
    return { name, datatype, shape, data: all.slice(from * perRow, to * perRow) };
  }
  const src = t.data as unknown as { buffer: ArrayBufferLike; byteOffset: number };
  const size = DATATYPES[datatype].size;
  const start = src.byteOffset + from * perRow * size;
  const data = (src.buffer as ArrayBuffer).slice(start, start + (to - from) * perRow * size);
  return { name, datatype, shape, data };
}

function concat(tensors: WireTensor[]): WireTensor {
  const first = tensors[0] as WireTensor;
  if (tensors.length === 1) return first;
  const shape = first.shape.slice();
  shape[0] = tensors.reduce((n, t) => n + (t.shape[0] ?? 0), 0);
  if (first.datatype === 'BYTES')
    return { ...first, shape, data: tensors.flatMap((t) => t.data as string[]) };
  const total = tensors.reduce((n, t) => n + (t.data as ArrayBuffer).byteLength, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const t of tensors) {
    out.set(new Uint8Array(t.data as ArrayBuffer), o);
    o += (t.data as ArrayBuffer).byteLength;
  }
  return { ...first, shape, data: out.buffer };
}

async function main(): Promise<void> {
  if (!parentPort) throw new Error('session-worker must run as a worker thread');
  const port = parentPort;
  const init = workerData as WorkerInit;
  let session: ort.InferenceSession;
  let outputMeta: TensorMeta[];
  try {
    session = await ort.InferenceSession.create(init.file, {
      intraOpNumThreads: init.intraOpThreads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
    const inputs = meta(session.inputMetadata);
    outputMeta = meta(session.outputMetadata);
    port.postMessage({ type: 'ready', inputs, outputs: outputMeta } satisfies FromWorker);
  } catch (err) {
    port.postMessage({ type: 'load-failed', message: (err as Error).message } satisfies FromWorker);
    return;
  }
  const types = new Map(outputMeta.map((m) => [m.name, m.datatype]));

  port.on('message', (msg: ToWorker) => {
    if (msg.type === 'stall') {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, msg.ms);
      return;
    }
    // Thrown in the handler: the worker dies before it reads any later message.
    if (msg.type === 'crash') throw new Error('inference worker crash requested (test hook)');
    void run(msg);
  });

  async function run(msg: Extract<ToWorker, { type: 'run' }>): Promise<void> {
    const started = performance.now();
    try {
      const { parts } = msg;
      const feeds: Record<string, ort.Tensor> = {};
      const names = (parts[0] as RunPart).inputs.map((t) => t.name);
      for (const name of names)
        feeds[name] = toOrt(concat(parts.map((p) => p.inputs.find((t) => t.name === name) as WireTensor)));
      const wanted = new Set(parts.flatMap((p) => (p.outputs.length ? p.outputs : [...types.keys()])));
      const result = await session.run(feeds, [...wanted]);
      const rows = parts.map((p) => (parts.length === 1 ? 1 : ((p.inputs[0] as WireTensor).shape[0] ?? 1)));
      const totalRows = rows.reduce((a, b) => a + b, 0);
      const out: WireTensor[][] = [];
      const transfer: ArrayBuffer[] = [];
      let row = 0;
      parts.forEach((p, i) => {
        const n = rows[i] as number;
        const names = p.outputs.length ? p.outputs : [...types.keys()];
        out.push(
          names.map((name) => {
            const t = result[name] as ort.Tensor;
            const w = slice(
              name,
              t,
              types.get(name) as Datatype,
              parts.length === 1 ? 0 : row,
              parts.length === 1 ? 1 : row + n,
              parts.length === 1 ? null : totalRows,
            );
            if (w.data instanceof ArrayBuffer) transfer.push(w.data);
            return w;
          }),
        );
        row += n;
      });
      const reply: FromWorker = {
        type: 'result',
        seq: msg.seq,
        parts: out,
        computeMs: performance.now() - started,
      };
      port.postMessage(reply, transfer);
    } catch (err) {
      port.postMessage({
        type: 'failed',
        seq: msg.seq,
        message: (err as Error).message,
      } satisfies FromWorker);
    }
  }
}

await main();
