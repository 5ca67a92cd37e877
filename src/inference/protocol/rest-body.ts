import { KapokError } from '../../core/errors.js';
import { jsonTooDeep, MAX_JSON_DEPTH } from '../../core/http/json-depth.js';
import type { TensorMeta, WireTensor } from '../tensors/datatypes.js';
import { DENSE_DECLINED, fromJsonData } from '../tensors/json.js';
import { scanInferBody } from '../tensors/json-scan.js';
import { fromRaw } from '../tensors/raw.js';
import { bad, checkDatatype, checkShape } from './checks.js';

/**
 * The OIP REST infer body: JSON, or with the binary tensor extension a JSON header followed by raw
 * tensor bytes. Parsed in place or on the decoder thread (body-decoder.ts), with the same checks.
 */

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

/**
 * Body bytes (the JSON part) → checked request. First our scanner, which reads `data` numbers
 * straight into typed arrays; when it declines (anything it is not certain to read as JSON.parse
 * would, and every invalid body), JSON.parse and the same checks, which name the fault.
 */
export function parseBodyBytes(
  json: Buffer,
  inputs: TensorMeta[],
  maxBatch: number,
  binary: Buffer | undefined,
): ParsedInfer {
  const fast = scanInferBody(
    json,
    inputs.every((m) => m.datatype === 'FP32'),
  );
  if (fast !== undefined)
    try {
      return parseInferBody(fast, inputs, maxBatch, binary);
    } catch (err) {
      if (err !== DENSE_DECLINED) throw err;
    }
  const text = json.toString('utf8');
  let parsed: unknown;
  try {
    parsed = json.length === 0 ? undefined : JSON.parse(text);
  } catch (err) {
    throw new KapokError(
      'KAPOK_INFERENCE_BAD_REQUEST',
      `request body is not valid JSON: ${(err as Error).message}`,
    );
  }
  checkDepth(text, parsed);
  return parseInferBody(parsed, inputs, maxBatch, binary);
}

/** A body nested deeper than MAX_JSON_DEPTH is a 400, in place and on the decoder thread alike. */
export function checkDepth(text: string, parsed: unknown): void {
  if (jsonTooDeep(text, parsed))
    throw bad(`request body nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels`);
}
