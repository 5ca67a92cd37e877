import { DATATYPES, type Datatype, type WireTensor } from '../tensors/datatypes.js';

export { fromRaw, toRaw } from '../tensors/raw.js';

import { fromJsonData } from '../tensors/json.js';
import { bad } from './checks.js';

/** OIP gRPC tensor contents ↔ wire tensors: typed `InferTensorContents` fields and raw bytes. */

export interface TensorContents {
  bool_contents?: boolean[];
  int_contents?: number[];
  int64_contents?: Array<string | number>;
  uint_contents?: number[];
  uint64_contents?: Array<string | number>;
  fp32_contents?: number[];
  fp64_contents?: number[];
  bytes_contents?: Buffer[];
}

const FIELD: Record<Datatype, keyof TensorContents> = {
  BOOL: 'bool_contents',
  INT8: 'int_contents',
  INT16: 'int_contents',
  INT32: 'int_contents',
  INT64: 'int64_contents',
  UINT8: 'uint_contents',
  UINT16: 'uint_contents',
  UINT32: 'uint_contents',
  UINT64: 'uint64_contents',
  FP32: 'fp32_contents',
  FP64: 'fp64_contents',
  BYTES: 'bytes_contents',
};

/** Typed contents: the field matching the datatype, checked like REST `data`. */
export function fromContents(
  name: string,
  dt: Datatype,
  shape: number[],
  c: TensorContents | null,
): WireTensor {
  const field = FIELD[dt];
  for (const [k, v] of Object.entries(c ?? {}))
    if (k !== field && Array.isArray(v) && v.length > 0)
      throw bad(`input '${name}': datatype ${dt} takes its values in contents.${field}, not ${k}`);
  const values = (c?.[field] ?? []) as unknown[];
  const data = dt === 'BYTES' ? (values as Buffer[]).map((b) => Buffer.from(b).toString('utf8')) : values;
  return fromJsonData(name, dt, shape, data);
}

export function toContents(t: WireTensor): TensorContents {
  const field = FIELD[t.datatype];
  if (t.datatype === 'BYTES')
    return { bytes_contents: (t.data as string[]).map((s) => Buffer.from(s, 'utf8')) };
  const info = DATATYPES[t.datatype];
  const buf = t.data as ArrayBuffer;
  const arr = new (info.ctor as NonNullable<typeof info.ctor>)(buf, 0, buf.byteLength / info.size);
  if (info.kind === 'bigint') return { [field]: Array.from(arr as BigInt64Array, (v) => v.toString()) };
  if (info.kind === 'bool') return { [field]: Array.from(arr as Uint8Array, (v) => v !== 0) };
  return { [field]: Array.from(arr as Float32Array) };
}
