import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fromJsonData } from '../../src/inference/tensors/json.js';

/**
 * OIP JSON `data` → typed arrays (tensors/json.ts), in process: the per-kind loop keeps the values
 * and the order in which faults are reported (element faults up to the shape's count, then excess).
 */

const values = (t: { data: unknown }, ctor: Float32ArrayConstructor | Int8ArrayConstructor) =>
  Array.from(new ctor(t.data as ArrayBuffer));

describe('inference JSON tensor data', () => {
  it('FP32 elements round like Float32Array, flat and nested alike', () => {
    const xs = [0.1, -2.5, 1e-40, 3.4e38];
    const flat = fromJsonData('x', 'FP32', [2, 2], xs);
    const nested = fromJsonData('x', 'FP32', [2, 2], [xs.slice(0, 2), xs.slice(2)]);
    assert.deepEqual(values(flat, Float32Array), Array.from(Float32Array.from(xs)));
    assert.deepEqual(values(nested, Float32Array), values(flat, Float32Array));
  });

  it('integer elements keep their datatype range; the first fault is named by index', () => {
    assert.deepEqual(values(fromJsonData('i', 'INT8', [3], [-128, 0, 127]), Int8Array), [-128, 0, 127]);
    assert.throws(() => fromJsonData('i', 'INT8', [3], [1, 128, 'a']), /input 'i': element 1 is 128/);
    assert.throws(() => fromJsonData('i', 'INT8', [2], [1, 2.5]), /element 1 is 2.5, expected an integer/);
  });

  it('a bad element before the shape is full is reported before the excess', () => {
    assert.throws(() => fromJsonData('x', 'FP32', [2], [1, 'NaN', 3]), /element 1 is "NaN"/);
    assert.throws(() => fromJsonData('x', 'FP32', [2], [1, 2, 'NaN']), /data has more than the 2 elements/);
    // Across rows: the second row overflows after the first filled the count.
    assert.throws(
      () => fromJsonData('x', 'FP32', [4], [1, 2, 3, 4, null]),
      /data has more than the 4 elements of shape \[4\]/,
    );
  });

  it('non-finite numbers and non-numbers are refused with the element index', () => {
    assert.throws(() => fromJsonData('x', 'FP64', [3], [1, 2, Number.NaN]), /element 2 is null/);
    assert.throws(() => fromJsonData('x', 'FP32', [2], [true, 1]), /element 0 is true, expected a finite/);
  });
});
