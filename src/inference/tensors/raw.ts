import { KapokError } from '../../core/errors.js';
import { DATATYPES, type Datatype, elementCount, type WireTensor } from './datatypes.js';

/**
 * Raw tensor bytes, shared by gRPC `raw_input_contents`/`raw_output_contents` and the REST binary
 * tensor extension: row-major little-endian elements; BYTES as a 4-byte little-endian length
 * followed by the bytes, per element.
 */

const bad = (message: string) => new KapokError('KAPOK_INFERENCE_BAD_REQUEST', message);

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
