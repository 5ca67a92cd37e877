import { KapokError } from '../../core/errors.js';
import type { InferJob } from '../execution/runner.js';
import {
  type Datatype,
  elementCount,
  isDatatype,
  MAX_RANK,
  type TensorMeta,
  type WireTensor,
} from '../tensors/datatypes.js';

/** Request checks shared by REST and gRPC; every error names the input or output at fault. */

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
