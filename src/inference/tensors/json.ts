import { KapokError } from '../../core/errors.js';
import type { InferJob } from '../execution/runner.js';
import {
  DATATYPES,
  type Datatype,
  elementCount,
  isDatatype,
  type NumericArray,
  type TensorMeta,
  type WireTensor,
} from './datatypes.js';
import { fromRaw } from './raw.js';

/**
 * Request checks shared by REST and gRPC (every error names the input), JSON `data` → typed arrays,
 * and typed arrays → JSON text for responses.
 */

const MAX_RANK = 16;
const MAX_ELEMENTS = 1 << 28;

export function bad(message: string): KapokError {
  return new KapokError('KAPOK_INFERENCE_BAD_REQUEST', message);
}

/** Checks a requested shape against the model's (-1 = any size). */
export function checkShape(meta: TensorMeta, shape: unknown, maxBatch: number): number[] {
  const name = meta.name;
  if (!Array.isArray(shape) || shape.length > MAX_RANK)
    throw bad(`input '${name}': shape must be an array of at most ${MAX_RANK} non-negative integers`);
  for (const d of shape)
    if (!Number.isSafeInteger(d) || (d as number) < 0)
      throw bad(
        `input '${name}': shape must be an array of non-negative integers, found ${JSON.stringify(shape)}`,
      );
  const dims = shape as number[];
  const want = meta.shape;
  const fits = dims.length === want.length && want.every((w, i) => w === -1 || w === dims[i]);
  if (!fits)
    throw bad(`input '${name}': shape [${dims}] does not match the model's [${want}] (-1: any size)`);
  if (maxBatch > 0 && (dims[0] ?? 0) > maxBatch)
    throw bad(`input '${name}': batch ${dims[0]} exceeds the model's maxBatchSize ${maxBatch}`);
  if (elementCount(dims) > MAX_ELEMENTS) throw bad(`input '${name}': shape [${dims}] has too many elements`);
  return dims;
}

export function checkDatatype(meta: TensorMeta, datatype: unknown): Datatype {
  if (!isDatatype(datatype) || datatype !== meta.datatype)
    throw bad(
      `input '${meta.name}': datatype ${JSON.stringify(datatype)} does not match the model's ${meta.datatype}`,
    );
  return datatype;
}

/** One element into a typed array at `i`; throws naming the input on a wrong type or range. */
function put(arr: NumericArray, i: number, v: unknown, dt: Datatype, name: string): void {
  const info = DATATYPES[dt];
  switch (info.kind) {
    case 'float':
      if (typeof v !== 'number' || !Number.isFinite(v))
        throw bad(`input '${name}': element ${i} is ${JSON.stringify(v)}, expected a finite number`);
      arr[i] = v;
      return;
    case 'int':
      if (
        typeof v !== 'number' ||
        !Number.isInteger(v) ||
        v < (info.min as number) ||
        v > (info.max as number)
      )
        throw bad(
          `input '${name}': element ${i} is ${JSON.stringify(v)}, expected an integer in ${dt} range`,
        );
      arr[i] = v;
      return;
    case 'bigint': {
      // JSON numbers beyond 2^53 lose precision in JSON.parse; decimal strings carry them exactly.
      let b: bigint;
      if (typeof v === 'number' && Number.isSafeInteger(v)) b = BigInt(v);
      else if (typeof v === 'string' && /^-?[0-9]{1,20}$/.test(v)) b = BigInt(v);
      else
        throw bad(
          `input '${name}': element ${i} is ${JSON.stringify(v)}, expected an integer in ${dt} range`,
        );
      if (b < (info.min as bigint) || b > (info.max as bigint))
        throw bad(`input '${name}': element ${i} is ${v}, outside the ${dt} range`);
      arr[i] = b;
      return;
    }
    case 'bool':
      if (typeof v !== 'boolean')
        throw bad(`input '${name}': element ${i} is ${JSON.stringify(v)}, expected true or false`);
      arr[i] = v ? 1 : 0;
      return;
    default:
      throw bad(`input '${name}': unsupported datatype ${dt}`);
  }
}

/** `data` (flat or nested arrays) → a wire tensor of `count` elements. */
export function fromJsonData(name: string, dt: Datatype, shape: number[], data: unknown): WireTensor {
  const count = elementCount(shape);
  if (!Array.isArray(data)) throw bad(`input '${name}': data must be an array (flat or nested)`);
  if (dt === 'BYTES') {
    const out: string[] = [];
    const walk = (a: unknown[], depth: number): void => {
      for (const v of a) {
        if (Array.isArray(v)) {
          if (depth >= MAX_RANK) throw bad(`input '${name}': data is nested deeper than ${MAX_RANK}`);
          walk(v, depth + 1);
        } else if (typeof v === 'string') {
          if (out.length >= count)
            throw bad(`input '${name}': data has more than the ${count} elements of shape [${shape}]`);
          out.push(v);
        } else throw bad(`input '${name}': element ${out.length} is ${JSON.stringify(v)}, expected a string`);
      }
    };
    walk(data, 0);
    if (out.length !== count)
      throw bad(`input '${name}': data has ${out.length} elements, shape [${shape}] needs ${count}`);
    return { name, datatype: dt, shape, data: out };
  }
  const info = DATATYPES[dt];
  const ctor = info.ctor as NonNullable<typeof info.ctor>;
  const arr = new ctor(count);
  let i = 0;
  const walk = (a: unknown[], depth: number): void => {
    for (const v of a) {
      if (Array.isArray(v)) {
        if (depth >= MAX_RANK) throw bad(`input '${name}': data is nested deeper than ${MAX_RANK}`);
        walk(v, depth + 1);
        continue;
      }
      if (i >= count)
        throw bad(`input '${name}': data has more than the ${count} elements of shape [${shape}]`);
      put(arr, i++, v, dt, name);
    }
  };
  walk(data, 0);
  if (i !== count) throw bad(`input '${name}': data has ${i} elements, shape [${shape}] needs ${count}`);
  return { name, datatype: dt, shape, data: arr.buffer as ArrayBuffer };
}

/** Checks that every model input is given exactly once and every requested output exists. */
export function buildJob(
  modelInputs: TensorMeta[],
  modelOutputs: TensorMeta[],
  given: WireTensor[],
  outputs: string[],
  deadline: number,
): InferJob {
  const byName = new Map<string, WireTensor>();
  for (const t of given) {
    if (!modelInputs.some((m) => m.name === t.name))
      throw bad(
        `input '${t.name}' is not an input of the model (inputs: ${modelInputs.map((m) => m.name).join(', ')})`,
      );
    if (byName.has(t.name)) throw bad(`input '${t.name}' is given twice`);
    byName.set(t.name, t);
  }
  const ordered = modelInputs.map((m) => {
    const t = byName.get(m.name);
    if (!t) throw bad(`input '${m.name}' is missing`);
    return t;
  });
  for (const o of outputs)
    if (!modelOutputs.some((m) => m.name === o))
      throw bad(
        `output '${o}' is not an output of the model (outputs: ${modelOutputs.map((m) => m.name).join(', ')})`,
      );
  const rows = ordered[0]?.shape[0] ?? 1;
  const shapeKey = ordered.map((t) => t.shape.slice(1).join('x')).join('|');
  return { inputs: ordered, outputs: [...new Set(outputs)], rows, shapeKey, deadline };
}

/** JSON text of a tensor's elements (flat). Non-finite floats become null: JSON has no NaN. */
export function jsonData(t: WireTensor): string {
  if (t.datatype === 'BYTES') return JSON.stringify(t.data);
  const info = DATATYPES[t.datatype];
  const buf = t.data as ArrayBuffer;
  const arr = new (info.ctor as NonNullable<typeof info.ctor>)(buf, 0, buf.byteLength / info.size);
  if (info.kind === 'bool')
    return `[${Array.from(arr as Uint8Array, (v) => (v ? 'true' : 'false')).join(',')}]`;
  if (info.kind === 'float') {
    let s = '[';
    for (let i = 0; i < arr.length; i++) {
      const v = arr[i] as number;
      s += (i ? ',' : '') + (Number.isFinite(v) ? v : 'null');
    }
    return `${s}]`;
  }
  return `[${(arr as unknown as ArrayLike<number | bigint> & Iterable<number | bigint>) && Array.prototype.join.call(arr, ',')}]`;
}

/** What an OIP REST infer body holds once checked against the model. */
export interface ParsedInfer {
  id: string | undefined;
  outputs: string[];
  /** Outputs answered in the binary section (binary tensor extension); `*`: all. */
  binaryOutputs: string[];
  /** From parameters.timeout (µs, Triton's name), in ms. */
  timeoutMs: number | undefined;
  tensors: WireTensor[];
}

type Obj = Record<string, unknown>;
const params = (x: unknown): Obj => {
  const p = (x as Obj | undefined)?.parameters;
  return p && typeof p === 'object' && !Array.isArray(p) ? (p as Obj) : {};
};

/**
 * Splits a body of the binary tensor extension (Triton's, used by its clients by default): a JSON
 * header of `headerLength` bytes, then the raw bytes of the inputs that carry
 * `parameters.binary_data_size`, in input order.
 */
export function splitBody(body: Buffer, headerLength: unknown): { json: Buffer; binary: Buffer | undefined } {
  if (headerLength === undefined) return { json: body, binary: undefined };
  const n = Number(headerLength);
  if (!Number.isSafeInteger(n) || n < 0 || n > body.length)
    throw bad(
      `Inference-Header-Content-Length ${String(headerLength).slice(0, 20)} is not within the ${body.length}-byte body`,
    );
  return { json: body.subarray(0, n), binary: body.subarray(n) };
}

/** Checks a parsed REST infer body against the model's inputs; every error names what is wrong. */
export function parseInferBody(
  body: unknown,
  inputs: TensorMeta[],
  maxBatch: number,
  binary?: Buffer,
): ParsedInfer {
  if (!body || typeof body !== 'object' || Array.isArray(body))
    throw bad('request body must be a JSON object with "inputs"');
  const b = body as Obj;
  if (!Array.isArray(b.inputs)) throw bad('"inputs" must be an array of tensors');
  if (b.id !== undefined && typeof b.id !== 'string') throw bad('"id" must be a string');
  if (b.outputs !== undefined && !Array.isArray(b.outputs)) throw bad('"outputs" must be an array');
  const binaryOutputs: string[] = params(b).binary_data_output === true ? ['*'] : [];
  const outputs = ((b.outputs as unknown[]) ?? []).map((o) => {
    const n = (o as { name?: unknown })?.name;
    if (typeof n !== 'string') throw bad('each of "outputs" needs a "name"');
    if (params(o).binary_data === true) binaryOutputs.push(n);
    return n;
  });
  const t = params(b).timeout;
  if (t !== undefined && (!Number.isSafeInteger(t) || (t as number) < 0))
    throw bad('parameters.timeout must be a non-negative integer (microseconds)');
  let offset = 0;
  const tensors = b.inputs.map((raw: unknown, i: number) => {
    const x = raw as Obj;
    if (!x || typeof x !== 'object' || typeof x.name !== 'string') throw bad(`inputs[${i}] needs a "name"`);
    const meta = inputs.find((m) => m.name === x.name);
    if (!meta)
      throw bad(
        `input '${x.name}' is not an input of the model (inputs: ${inputs.map((m) => m.name).join(', ')})`,
      );
    const datatype = checkDatatype(meta, x.datatype);
    const shape = checkShape(meta, x.shape, maxBatch);
    const size = params(x).binary_data_size;
    if (size === undefined) return fromJsonData(meta.name, datatype, shape, x.data);
    if (!binary)
      throw bad(`input '${meta.name}': binary_data_size needs the Inference-Header-Content-Length header`);
    if (x.data !== undefined) throw bad(`input '${meta.name}': give data or binary_data_size, not both`);
    if (!Number.isSafeInteger(size) || (size as number) < 0 || offset + (size as number) > binary.length)
      throw bad(
        `input '${meta.name}': binary_data_size ${size} runs past the ${binary.length - offset} binary bytes left`,
      );
    const part = binary.subarray(offset, offset + (size as number));
    offset += size as number;
    return fromRaw(meta.name, datatype, shape, part);
  });
  if (binary && offset !== binary.length)
    throw bad(`the binary section has ${binary.length - offset} bytes no input claims (binary_data_size)`);
  return {
    id: b.id as string | undefined,
    outputs,
    binaryOutputs,
    timeoutMs: t === undefined ? undefined : Math.ceil((t as number) / 1000),
    tensors,
  };
}
