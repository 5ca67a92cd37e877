import type ort from 'onnxruntime-node';
import {
  DATATYPES,
  type Datatype,
  datatypeOfOrt,
  type TensorMeta,
  type WireTensor,
} from '../tensors/datatypes.js';

/**
 * One ONNX Runtime session and its run step, shared by the session worker thread (session-worker.ts)
 * and the inline sessions of tiny models on the event-loop thread (inline-session.ts).
 */

export interface WorkerInit {
  file: string;
  intraOpThreads: number;
  /** ONNX Runtime's session.intra_op.allow_spinning (config intraOpSpinning). */
  intraOpSpinning: boolean;
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

/**
 * Buffers are transferred, not copied: copying a small one into the message measured the same
 * (64 B, 1 KiB: ~36 µs CPU per round trip either way) and a 16 KiB one cost more (51–92 vs 37–44 µs).
 */

function meta(m: readonly ort.InferenceSession.ValueMetadata[]): TensorMeta[] {
  return m.map((v) => {
    if (!v.isTensor) throw new Error(`${v.name}: only tensor inputs and outputs are supported`);
    const datatype = datatypeOfOrt(v.type);
    if (!datatype) throw new Error(`${v.name}: ONNX element type ${v.type} is not supported`);
    return { name: v.name, datatype, shape: v.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)) };
  });
}

function toOrt(o: typeof ort, t: WireTensor): ort.Tensor {
  const info = DATATYPES[t.datatype];
  if (t.datatype === 'BYTES') return new o.Tensor('string', t.data as string[], t.shape);
  const ctor = info.ctor as NonNullable<typeof info.ctor>;
  const buf = t.data as ArrayBuffer;
  // biome-ignore lint/suspicious/noExplicitAny: ORT's Tensor overloads are keyed by the type literal
  return new o.Tensor(info.ort as any, new ctor(buf, 0, buf.byteLength / info.size) as any, t.shape);
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

export interface OpenSession {
  inputs: TensorMeta[];
  outputs: TensorMeta[];
  /** Runs one message; `transfer` lists the output buffers (for a worker's postMessage). */
  run(msg: Extract<ToWorker, { type: 'run' }>): Promise<{ reply: FromWorker; transfer: ArrayBuffer[] }>;
  release(): Promise<void>;
}

export async function openSession(o: typeof ort, init: WorkerInit): Promise<OpenSession> {
  const session = await o.InferenceSession.create(init.file, {
    intraOpNumThreads: init.intraOpThreads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    // Config entries (onnxruntime_session_options_config_keys.h); the Node binding takes strings.
    extra: { session: { intra_op: { allow_spinning: init.intraOpSpinning ? '1' : '0' } } },
  });
  const inputs = meta(session.inputMetadata);
  const outputs = meta(session.outputMetadata);
  const types = new Map(outputs.map((m) => [m.name, m.datatype]));
  const all = [...types.keys()];

  async function run(msg: Extract<ToWorker, { type: 'run' }>) {
    const started = performance.now();
    const transfer: ArrayBuffer[] = [];
    try {
      const { parts } = msg;
      const feeds: Record<string, ort.Tensor> = {};
      const names = (parts[0] as RunPart).inputs.map((t) => t.name);
      for (const name of names)
        feeds[name] = toOrt(o, concat(parts.map((p) => p.inputs.find((t) => t.name === name) as WireTensor)));
      const wanted = parts.length === 1 ? (parts[0] as RunPart).outputs : [];
      const fetches = wanted.length
        ? wanted
        : [...new Set(parts.flatMap((p) => (p.outputs.length ? p.outputs : all)))];
      const result = await session.run(feeds, fetches);
      const rows = parts.map((p) => (parts.length === 1 ? 1 : ((p.inputs[0] as WireTensor).shape[0] ?? 1)));
      const totalRows = rows.reduce((a, b) => a + b, 0);
      const out: WireTensor[][] = [];
      let row = 0;
      parts.forEach((p, i) => {
        const n = rows[i] as number;
        const names = p.outputs.length ? p.outputs : all;
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
            if (w.data instanceof ArrayBuffer && w.data.byteLength > 0) transfer.push(w.data);
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
      return { reply, transfer };
    } catch (err) {
      return {
        reply: { type: 'failed', seq: msg.seq, message: (err as Error).message } satisfies FromWorker,
        transfer: [],
      };
    }
  }
  return { inputs, outputs, run, release: () => session.release() };
}
