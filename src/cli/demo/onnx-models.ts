// Small ONNX models written from code by encoding the ONNX protobuf directly (no Python, no onnx
// package): `kapok demo` serves one, and tests and benchmarks make theirs at run time
// (scripts/onnx-models.ts writes them from the command line). Weights come from a seeded
// generator, so every run writes byte-identical files.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// --- protobuf wire encoding (varint, length-delimited, fixed32/64) -------------------------------

class Pb {
  private parts: Uint8Array[] = [];
  private len = 0;
  private push(b: Uint8Array): void {
    this.parts.push(b);
    this.len += b.length;
  }
  private varint(v: bigint): void {
    const out: number[] = [];
    let x = BigInt.asUintN(64, v);
    do {
      let byte = Number(x & 0x7fn);
      x >>= 7n;
      if (x) byte |= 0x80;
      out.push(byte);
    } while (x);
    this.push(Uint8Array.from(out));
  }
  private key(field: number, wire: number): void {
    this.varint(BigInt((field << 3) | wire));
  }
  int(field: number, v: number | bigint): this {
    this.key(field, 0);
    this.varint(BigInt(v));
    return this;
  }
  bytes(field: number, b: Uint8Array): this {
    this.key(field, 2);
    this.varint(BigInt(b.length));
    this.push(b);
    return this;
  }
  str(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }
  msg(field: number, m: Pb): this {
    return this.bytes(field, m.finish());
  }
  float(field: number, v: number): this {
    this.key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.push(b);
    return this;
  }
  finish(): Uint8Array {
    const out = new Uint8Array(this.len);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

// --- ONNX messages (onnx.proto3 field numbers) ---------------------------------------------------

/** TensorProto.DataType values. */
export const ONNX_TYPE = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
} as const;

type Dim = number | string;
type Attr = { name: string } & ({ i: number } | { f: number } | { ints: number[] });

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Attr[];
}

export interface ValueSpec {
  name: string;
  type: number;
  /** A number is a fixed size; a string a symbolic (dynamic) dimension. */
  shape: Dim[];
}

export interface InitSpec {
  name: string;
  dims: number[];
  data: Float32Array;
}

function valueInfo(v: ValueSpec): Pb {
  const shape = new Pb();
  for (const d of v.shape) shape.msg(1, typeof d === 'number' ? new Pb().int(1, d) : new Pb().str(2, d));
  const tensor = new Pb().int(1, v.type).msg(2, shape);
  return new Pb().str(1, v.name).msg(2, new Pb().msg(1, tensor));
}

function attribute(a: Attr): Pb {
  const p = new Pb().str(1, a.name);
  if ('i' in a) return p.int(3, a.i).int(20, 2);
  if ('f' in a) return p.float(2, a.f).int(20, 1);
  for (const v of a.ints) p.int(8, v);
  return p.int(20, 7);
}

function initializer(t: InitSpec): Pb {
  const p = new Pb();
  for (const d of t.dims) p.int(1, d);
  p.int(2, ONNX_TYPE.FLOAT).str(8, t.name);
  return p.bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
}

/** A whole ModelProto (IR 8, default opset 13). */
export function encodeModel(spec: {
  nodes: NodeSpec[];
  inputs: ValueSpec[];
  outputs: ValueSpec[];
  initializers?: InitSpec[];
  name?: string;
}): Uint8Array {
  const graph = new Pb();
  spec.nodes.forEach((n, i) => {
    const node = new Pb();
    for (const x of n.inputs) node.str(1, x);
    for (const x of n.outputs) node.str(2, x);
    node.str(3, `${n.op.toLowerCase()}_${i}`).str(4, n.op);
    for (const a of n.attrs ?? []) node.msg(5, attribute(a));
    graph.msg(1, node);
  });
  graph.str(2, spec.name ?? 'kapok');
  for (const t of spec.initializers ?? []) graph.msg(5, initializer(t));
  for (const v of spec.inputs) graph.msg(11, valueInfo(v));
  for (const v of spec.outputs) graph.msg(12, valueInfo(v));
  return new Pb()
    .int(1, 8)
    .str(2, 'kapok-onnx-writer')
    .msg(7, graph)
    .msg(8, new Pb().str(1, '').int(2, 13))
    .finish();
}

// --- the models ---------------------------------------------------------------------------------

/** Deterministic weights in [-scale, scale) (xorshift32). */
export function weights(n: number, seed: number, scale = 0.5): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = (s / 0x1_0000_0000) * 2 * scale - scale;
  }
  return out;
}

/**
 * MLP x[N,inDim] → Gemm → Relu → Gemm → y[N,outDim], dynamic batch. `bias` shifts the last layer's
 * bias so two versions of the model give different outputs (hot-swap tests).
 */
export function mlpModel(
  opts: { inDim?: number; hidden?: number; outDim?: number; seed?: number; bias?: number } = {},
) {
  const { inDim = 16, hidden = 32, outDim = 4, seed = 1, bias = 0 } = opts;
  const b2 = weights(outDim, seed + 3, 0.1).map((v) => v + bias);
  return encodeModel({
    name: 'mlp',
    nodes: [
      { op: 'Gemm', inputs: ['x', 'w1', 'b1'], outputs: ['h'] },
      { op: 'Relu', inputs: ['h'], outputs: ['r'] },
      { op: 'Gemm', inputs: ['r', 'w2', 'b2'], outputs: ['y'] },
    ],
    initializers: [
      { name: 'w1', dims: [inDim, hidden], data: weights(inDim * hidden, seed) },
      { name: 'b1', dims: [hidden], data: weights(hidden, seed + 1, 0.1) },
      { name: 'w2', dims: [hidden, outDim], data: weights(hidden * outDim, seed + 2) },
      { name: 'b2', dims: [outDim], data: b2 },
    ],
    inputs: [{ name: 'x', type: ONNX_TYPE.FLOAT, shape: ['batch', inDim] }],
    outputs: [{ name: 'y', type: ONNX_TYPE.FLOAT, shape: ['batch', outDim] }],
  });
}

/** Conv net image[N,1,8,8] → Conv 3×3 (4 channels, pad 1) → Relu → GlobalAveragePool → Flatten → y[N,4]. */
export function convModel(seed = 7) {
  return encodeModel({
    name: 'conv',
    nodes: [
      {
        op: 'Conv',
        inputs: ['image', 'k', 'kb'],
        outputs: ['c'],
        attrs: [
          { name: 'kernel_shape', ints: [3, 3] },
          { name: 'pads', ints: [1, 1, 1, 1] },
        ],
      },
      { op: 'Relu', inputs: ['c'], outputs: ['r'] },
      { op: 'GlobalAveragePool', inputs: ['r'], outputs: ['p'] },
      { op: 'Flatten', inputs: ['p'], outputs: ['y'], attrs: [{ name: 'axis', i: 1 }] },
    ],
    initializers: [
      { name: 'k', dims: [4, 1, 3, 3], data: weights(36, seed) },
      { name: 'kb', dims: [4], data: weights(4, seed + 1, 0.1) },
    ],
    inputs: [{ name: 'image', type: ONNX_TYPE.FLOAT, shape: ['batch', 1, 8, 8] }],
    outputs: [{ name: 'y', type: ONNX_TYPE.FLOAT, shape: ['batch', 4] }],
  });
}

/** OIP datatype → ONNX element type, for the `types` echo model. */
export const TYPES_MODEL_INPUTS: Record<string, number> = {
  FP32: ONNX_TYPE.FLOAT,
  FP64: ONNX_TYPE.DOUBLE,
  INT8: ONNX_TYPE.INT8,
  INT16: ONNX_TYPE.INT16,
  INT32: ONNX_TYPE.INT32,
  INT64: ONNX_TYPE.INT64,
  UINT8: ONNX_TYPE.UINT8,
  UINT16: ONNX_TYPE.UINT16,
  UINT32: ONNX_TYPE.UINT32,
  UINT64: ONNX_TYPE.UINT64,
  BOOL: ONNX_TYPE.BOOL,
  BYTES: ONNX_TYPE.STRING,
};

/**
 * One Identity per datatype: in_<type>[n] → out_<type>[n]. Every OIP datatype (BYTES as ONNX
 * strings) round-trips through a real session.
 */
export function typesModel() {
  const names = Object.keys(TYPES_MODEL_INPUTS);
  return encodeModel({
    name: 'types',
    nodes: names.map((t) => ({ op: 'Identity', inputs: [`in_${t}`], outputs: [`out_${t}`] })),
    inputs: names.map((t) => ({ name: `in_${t}`, type: TYPES_MODEL_INPUTS[t] as number, shape: ['n'] })),
    outputs: names.map((t) => ({ name: `out_${t}`, type: TYPES_MODEL_INPUTS[t] as number, shape: ['n'] })),
  });
}

/** Writes <dir>/<name>/<version>/model.onnx and returns its path. */
export function writeModel(dir: string, name: string, version: string | number, bytes: Uint8Array): string {
  const d = join(dir, name, String(version));
  mkdirSync(d, { recursive: true });
  const file = join(d, 'model.onnx');
  writeFileSync(file, bytes);
  return file;
}
