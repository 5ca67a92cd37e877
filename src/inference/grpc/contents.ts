import { DATATYPES, type Datatype, elementCount, type WireTensor } from '../datatypes.js';
import { bad, fromJsonData } from '../tensors.js';

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

/** Raw contents: row-major little-endian elements; BYTES as 4-byte little-endian length + bytes each. */
export function fromRaw(name: string, dt: Datatype, shape: number[], raw: Buffer): WireTensor {
  const count = elementCount(shape);
  if (dt === 'BYTES') {
    const out: string[] = [];
    let o = 0;
    while (o < raw.length) {
      if (o + 4 > raw.length) throw bad(`input '${name}': raw BYTES contents end inside a length prefix`);
      const n = raw.readUInt32LE(o);
      o += 4;
      if (o + n > raw.length)
        throw bad(`input '${name}': raw BYTES element ${out.length} runs past the contents`);
      out.push(raw.toString('utf8', o, o + n));
      o += n;
      if (out.length > count) break;
    }
    if (out.length !== count)
      throw bad(`input '${name}': raw contents hold ${out.length} elements, shape [${shape}] needs ${count}`);
    return { name, datatype: dt, shape, data: out };
  }
  const size = DATATYPES[dt].size;
  if (raw.length !== count * size)
    throw bad(
      `input '${name}': raw contents are ${raw.length} bytes, shape [${shape}] of ${dt} needs ${count * size}`,
    );
  // A copy: the gRPC buffer may share memory with others, and the copy is transferred to the worker.
  const data = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length) as ArrayBuffer;
  if (DATATYPES[dt].kind === 'float') {
    const arr = dt === 'FP32' ? new Float32Array(data) : new Float64Array(data);
    for (let i = 0; i < arr.length; i++)
      if (!Number.isFinite(arr[i])) throw bad(`input '${name}': element ${i} is not a finite number`);
  } else if (dt === 'BOOL') {
    const arr = new Uint8Array(data);
    for (let i = 0; i < arr.length; i++)
      if ((arr[i] as number) > 1) throw bad(`input '${name}': element ${i} is not a BOOL (0 or 1)`);
  }
  return { name, datatype: dt, shape, data };
}

export function toRaw(t: WireTensor): Buffer {
  if (t.datatype !== 'BYTES') return Buffer.from(t.data as ArrayBuffer);
  const parts = (t.data as string[]).map((s) => Buffer.from(s, 'utf8'));
  const out = Buffer.allocUnsafe(parts.reduce((n, p) => n + 4 + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.writeUInt32LE(p.length, o);
    p.copy(out, o + 4);
    o += 4 + p.length;
  }
  return out;
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
