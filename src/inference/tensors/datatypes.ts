/**
 * Open Inference Protocol datatypes and their ONNX Runtime and typed-array counterparts. BYTES are
 * ONNX string tensors (UTF-8). FP16/BF16 are not offered (no JSON form and no typed array in Node 20).
 */

export type Datatype =
  | 'BOOL'
  | 'UINT8'
  | 'UINT16'
  | 'UINT32'
  | 'UINT64'
  | 'INT8'
  | 'INT16'
  | 'INT32'
  | 'INT64'
  | 'FP32'
  | 'FP64'
  | 'BYTES';

export type NumericArray =
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Float32Array
  | Float64Array;

type Ctor = { new (n: number): NumericArray; new (b: ArrayBuffer, o?: number, n?: number): NumericArray };

export interface TypeInfo {
  readonly ort: string;
  /** Bytes per element; 0 for BYTES. */
  readonly size: number;
  readonly ctor: Ctor | null;
  /** Inclusive range of integer types (bigint for 64-bit). */
  readonly min?: number | bigint;
  readonly max?: number | bigint;
  readonly kind: 'bool' | 'int' | 'bigint' | 'float' | 'bytes';
}

export const DATATYPES: Record<Datatype, TypeInfo> = {
  BOOL: { ort: 'bool', size: 1, ctor: Uint8Array, kind: 'bool' },
  UINT8: { ort: 'uint8', size: 1, ctor: Uint8Array, min: 0, max: 255, kind: 'int' },
  UINT16: { ort: 'uint16', size: 2, ctor: Uint16Array, min: 0, max: 65_535, kind: 'int' },
  UINT32: { ort: 'uint32', size: 4, ctor: Uint32Array, min: 0, max: 4_294_967_295, kind: 'int' },
  UINT64: { ort: 'uint64', size: 8, ctor: BigUint64Array, min: 0n, max: 2n ** 64n - 1n, kind: 'bigint' },
  INT8: { ort: 'int8', size: 1, ctor: Int8Array, min: -128, max: 127, kind: 'int' },
  INT16: { ort: 'int16', size: 2, ctor: Int16Array, min: -32_768, max: 32_767, kind: 'int' },
  INT32: { ort: 'int32', size: 4, ctor: Int32Array, min: -2_147_483_648, max: 2_147_483_647, kind: 'int' },
  INT64: {
    ort: 'int64',
    size: 8,
    ctor: BigInt64Array,
    min: -(2n ** 63n),
    max: 2n ** 63n - 1n,
    kind: 'bigint',
  },
  FP32: { ort: 'float32', size: 4, ctor: Float32Array, kind: 'float' },
  FP64: { ort: 'float64', size: 8, ctor: Float64Array, kind: 'float' },
  BYTES: { ort: 'string', size: 0, ctor: null, kind: 'bytes' },
};

const FROM_ORT: Record<string, Datatype> = Object.fromEntries(
  Object.entries(DATATYPES).map(([k, v]) => [v.ort, k as Datatype]),
);

export function datatypeOfOrt(ort: string): Datatype | null {
  return FROM_ORT[ort] ?? null;
}

export function isDatatype(s: unknown): s is Datatype {
  return typeof s === 'string' && Object.hasOwn(DATATYPES, s);
}

/** A tensor as it crosses threads: numeric data in an ArrayBuffer (transferred), BYTES as strings. */
export interface WireTensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  /** Numeric: the elements' bytes (little-endian, host order); BYTES: one string per element. */
  data: ArrayBuffer | string[];
}

/** A typed view of a wire tensor's numeric data. */
export function view(t: WireTensor): NumericArray {
  const info = DATATYPES[t.datatype];
  if (!info.ctor || !(t.data instanceof ArrayBuffer)) throw new Error(`${t.name}: not a numeric tensor`);
  return new info.ctor(t.data, 0, t.data.byteLength / info.size);
}

/** Most dimensions a tensor may have (shapes and nested JSON `data`). */
export const MAX_RANK = 16;

export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Model tensor metadata as OIP shows it: -1 for a dynamic dimension. */
export interface TensorMeta {
  name: string;
  datatype: Datatype;
  shape: number[];
}
