import { KapokError } from '../../core/errors.js';
import {
  DATATYPES,
  type Datatype,
  elementCount,
  MAX_RANK,
  type NumericArray,
  type WireTensor,
} from './datatypes.js';
import { DenseData } from './json-scan.js';

/**
 * OIP JSON tensor data: `data` (flat or nested arrays) → typed arrays, checked element by element,
 * and typed arrays → JSON text for responses.
 */

const bad = (message: string) => new KapokError('KAPOK_INFERENCE_BAD_REQUEST', message);

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

/**
 * Nested `data` must be a regular array of the shape, never ragged (rows of 17 and 15 add up to
 * [2,16] too): an array of arrays has shape[depth] rows, all arrays; an array of elements (a row)
 * holds the product of the remaining dimensions, so flat and partly flattened data stay valid.
 * Returns whether `a` holds arrays. Flat data's count is checked by the caller, as elements arrive.
 */
function rowCheck(name: string, shape: number[]) {
  const tail = shape.map((_, d) => shape.slice(d).reduce((x, y) => x * y, 1));
  return (a: unknown[], depth: number, path: string): boolean => {
    const nested = a.length > 0 && Array.isArray(a[0]);
    const where = path === '' ? 'data' : `data${path}`;
    // An array inside a row is refused by the element check (it is not a number or a string).
    if (nested) {
      if (depth >= MAX_RANK) throw bad(`input '${name}': data is nested deeper than ${MAX_RANK}`);
      for (const v of a)
        if (!Array.isArray(v))
          throw bad(`input '${name}': ${where} mixes arrays and elements; nest data as the shape [${shape}]`);
    } else if (depth === 0) return false;
    const want = nested ? shape[depth] : tail[depth];
    if (a.length !== want)
      throw bad(
        `input '${name}': ${where} has ${a.length} ${nested ? 'rows' : 'elements'}, shape [${shape}] needs ${want ?? 'no deeper nesting'}`,
      );
    return nested;
  };
}

/** Thrown by fromJsonData when dense data is not certainly valid: parse the body the plain way. */
export const DENSE_DECLINED = new Error('dense data declined');

/**
 * Dense `data` (json-scan.ts) → a wire tensor, only when the plain path would accept the same
 * numbers: nesting as rowCheck allows, every element finite / an in-range integer. Otherwise
 * DENSE_DECLINED, and the plain path names the fault.
 */
function fromDense(name: string, dt: Datatype, shape: number[], d: DenseData): WireTensor {
  const count = elementCount(shape);
  const { dims, values } = d;
  if (d.f32Only && dt !== 'FP32') throw DENSE_DECLINED;
  const leaf = dims.length - 1;
  if (values.length !== count || leaf >= MAX_RANK || (leaf > 0 && leaf >= shape.length)) throw DENSE_DECLINED;
  // Arrays of arrays have shape[level] rows; a row of numbers the rest of the shape's elements.
  for (let l = 0; l < leaf; l++) if (dims[l] !== shape[l]) throw DENSE_DECLINED;
  if (leaf > 0 && dims[leaf] !== elementCount(shape.slice(leaf))) throw DENSE_DECLINED;
  const info = DATATYPES[dt];
  if (info.kind === 'float') {
    for (let i = 0; i < count; i++) if (!Number.isFinite(values[i])) throw DENSE_DECLINED;
    const arr = dt === 'FP64' ? values.slice() : new Float32Array(values);
    return { name, datatype: dt, shape, data: arr.buffer as ArrayBuffer };
  }
  if (info.kind === 'int') {
    const min = info.min as number;
    const max = info.max as number;
    for (let i = 0; i < count; i++) {
      const v = values[i] as number;
      if (!Number.isInteger(v) || v < min || v > max) throw DENSE_DECLINED;
    }
    const arr = new (info.ctor as NonNullable<typeof info.ctor>)(count) as Exclude<
      NumericArray,
      BigInt64Array | BigUint64Array
    >;
    arr.set(values);
    return { name, datatype: dt, shape, data: arr.buffer as ArrayBuffer };
  }
  if (info.kind === 'bigint') {
    const arr = new (info.ctor as NonNullable<typeof info.ctor>)(count) as BigInt64Array | BigUint64Array;
    const min = info.min as bigint;
    for (let i = 0; i < count; i++) {
      const v = values[i] as number;
      if (!Number.isSafeInteger(v) || (min === 0n && v < 0)) throw DENSE_DECLINED;
      arr[i] = BigInt(v);
    }
    return { name, datatype: dt, shape, data: arr.buffer as ArrayBuffer };
  }
  throw DENSE_DECLINED; // BOOL and BYTES take no numbers
}

/** `data` (flat or nested arrays, or dense from json-scan.ts) → a wire tensor of `count` elements. */
export function fromJsonData(name: string, dt: Datatype, shape: number[], data: unknown): WireTensor {
  if (data instanceof DenseData) return fromDense(name, dt, shape, data);
  const count = elementCount(shape);
  if (!Array.isArray(data)) throw bad(`input '${name}': data must be an array (flat or nested)`);
  if (dt === 'BYTES') {
    const out: string[] = [];
    const rows = rowCheck(name, shape);
    const walk = (a: unknown[], depth: number, path: string): void => {
      const nested = rows(a, depth, path);
      for (let j = 0; j < a.length; j++) {
        const v = a[j];
        if (nested) walk(v as unknown[], depth + 1, `${path}[${j}]`);
        else if (typeof v === 'string') {
          if (out.length >= count)
            throw bad(`input '${name}': data has more than the ${count} elements of shape [${shape}]`);
          out.push(v);
        } else throw bad(`input '${name}': element ${out.length} is ${JSON.stringify(v)}, expected a string`);
      }
    };
    walk(data, 0, '');
    if (out.length !== count)
      throw bad(`input '${name}': data has ${out.length} elements, shape [${shape}] needs ${count}`);
    return { name, datatype: dt, shape, data: out };
  }
  const info = DATATYPES[dt];
  const ctor = info.ctor as NonNullable<typeof info.ctor>;
  const arr = new ctor(count);
  let i = 0;
  const rows = rowCheck(name, shape);
  const walk = (a: unknown[], depth: number, path: string): void => {
    if (rows(a, depth, path)) {
      for (let j = 0; j < a.length; j++) walk(a[j] as unknown[], depth + 1, `${path}[${j}]`);
      return;
    }
    // Elements up to the shape's count are checked in order, then any excess is refused (as before).
    // The common case (finite floats, in-range integers) stays in a tight loop; `put` names a fault.
    const n = Math.min(a.length, count - i);
    if (info.kind === 'float')
      for (let j = 0; j < n; j++) {
        const v = a[j];
        if (typeof v === 'number' && Number.isFinite(v)) arr[i++] = v;
        else put(arr, i++, v, dt, name);
      }
    else if (info.kind === 'int') {
      const min = info.min as number;
      const max = info.max as number;
      for (let j = 0; j < n; j++) {
        const v = a[j];
        if (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max) arr[i++] = v;
        else put(arr, i++, v, dt, name);
      }
    } else for (let j = 0; j < n; j++) put(arr, i++, a[j], dt, name);
    if (n < a.length)
      throw bad(`input '${name}': data has more than the ${count} elements of shape [${shape}]`);
  };
  walk(data, 0, '');
  if (i !== count) throw bad(`input '${name}': data has ${i} elements, shape [${shape}] needs ${count}`);
  return { name, datatype: dt, shape, data: arr.buffer as ArrayBuffer };
}

/**
 * JSON text of a tensor's elements (flat), written from the typed array with no JS array between.
 * Non-finite floats become null: JSON has no NaN.
 */
export function jsonData(t: WireTensor): string {
  if (t.datatype === 'BYTES') return JSON.stringify(t.data);
  const info = DATATYPES[t.datatype];
  const buf = t.data as ArrayBuffer;
  const arr = new (info.ctor as NonNullable<typeof info.ctor>)(buf, 0, buf.byteLength / info.size);
  if (info.kind === 'bool') {
    let s = '[';
    for (let i = 0; i < arr.length; i++) s += (i ? ',' : '') + (arr[i] ? 'true' : 'false');
    return `${s}]`;
  }
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
