import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isKapokError } from '../../src/core/errors.js';
import { checkDepth, parseBodyBytes, parseInferBody } from '../../src/inference/protocol/rest-body.js';
import type { Datatype, TensorMeta } from '../../src/inference/tensors/datatypes.js';
import { DenseData, scanInferBody } from '../../src/inference/tensors/json-scan.js';

/**
 * The REST body scanner (tensors/json-scan.ts) against JSON.parse: on valid bodies the same numbers
 * bit for bit (exponents, -0, 1e308, subnormals, 17-digit doubles) read straight into typed arrays;
 * on every invalid or hostile body the same refusal, code and message, as the JSON.parse path.
 */

const meta = (datatype: Datatype, shape: number[]): TensorMeta[] => [{ name: 'x', datatype, shape }];

/** The plain path, as before the scanner: JSON.parse, the depth check, the same checks. */
function plain(body: Buffer, inputs: TensorMeta[]) {
  const text = body.toString('utf8');
  let parsed: unknown;
  try {
    parsed = body.length === 0 ? undefined : JSON.parse(text);
  } catch (err) {
    return {
      code: 'KAPOK_INFERENCE_BAD_REQUEST',
      message: `request body is not valid JSON: ${(err as Error).message}`,
    };
  }
  try {
    checkDepth(text, parsed);
    return parseInferBody(parsed, inputs, 0);
  } catch (err) {
    return { code: (err as { code: string }).code, message: (err as Error).message };
  }
}

function scanned(body: Buffer, inputs: TensorMeta[]) {
  try {
    return parseBodyBytes(body, inputs, 0, undefined);
  } catch (err) {
    assert.ok(isKapokError(err), `not a KapokError: ${err}`);
    return { code: err.code, message: err.message };
  }
}

const infer = (data: unknown, datatype = 'FP32', shape = [Array.isArray(data) ? data.length : 0]) =>
  Buffer.from(JSON.stringify({ inputs: [{ name: 'x', datatype, shape, data }] }));

/** Same answer both ways; returns it. */
function same(body: Buffer, inputs: TensorMeta[]) {
  const a = scanned(body, inputs);
  assert.deepEqual(a, plain(body, inputs), body.toString('utf8').slice(0, 200));
  return a;
}

function denseOf(body: Buffer): DenseData {
  const b = scanInferBody(body) as { inputs: Array<{ data: unknown }> };
  const d = b?.inputs?.[0]?.data;
  assert.ok(d instanceof DenseData, 'the scanner took the fast path');
  return d;
}

describe('inference REST body scanner', () => {
  it('reads numbers bit for bit as JSON.parse does: exponents, -0, 1e308, subnormals, long doubles', () => {
    const special = [
      '0',
      '-0',
      '-0.0',
      '1e308',
      '1.7976931348623157e308',
      '5e-324',
      '2.2250738585072014e-308',
      '1E5',
      '1e+5',
      '1.5e-5',
      '-2.5E-3',
      '0.1',
      '0.30000000000000004',
      '123456789012345678901234567890',
      '9007199254740993',
      '1e22',
      '1e23',
      '4.35e-200',
      '1e-400',
      '0.000001',
      '100.5',
      '3.4028235e38',
    ];
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const random = Array.from({ length: 3000 }, (_, i) => {
      const v = (rnd() - 0.5) * 10 ** Math.floor(rnd() * 40 - 20);
      return i % 3 === 0
        ? String(v)
        : i % 3 === 1
          ? v.toExponential(Math.floor(rnd() * 17))
          : v.toFixed(i % 9);
    });
    const texts = [...special, ...random];
    const body = Buffer.from(
      `{"inputs":[{"name":"x","datatype":"FP64","shape":[${texts.length}],"data":[${texts.join(',')}]}]}`,
    );
    const want = JSON.parse(`[${texts.join(',')}]`) as number[];
    const got = denseOf(body).values;
    for (let i = 0; i < texts.length; i++)
      assert.ok(Object.is(got[i], want[i]), `${texts[i]}: ${got[i]} != ${want[i]}`);
    // And through the checks into the tensor, equal to the JSON.parse path's bytes.
    const r = same(body, meta('FP64', [texts.length])) as { tensors: Array<{ data: ArrayBuffer }> };
    assert.ok(Object.is(new Float64Array(r.tensors[0]?.data as ArrayBuffer)[1], -0));
  });

  it('valid bodies: the same tensors as the JSON.parse path, flat, nested and partly flattened, all datatypes', () => {
    const cases: Array<[unknown, Datatype, number[]]> = [
      [[1.5, -2, 3e-3, 4], 'FP32', [4]],
      [
        [
          [1.5, -2],
          [3e-3, 4],
        ],
        'FP32',
        [2, 2],
      ],
      [[[[1, 2, 3, 4, 5, 6]], [[7, 8, 9, 10, 11, 12]]], 'FP32', [2, 1, 2, 3]],
      [
        [
          [1, 2, 3, 4, 5, 6],
          [7, 8, 9, 10, 11, 12],
        ],
        'FP32',
        [2, 2, 3],
      ],
      [[-128, 0, 127, -0], 'INT8', [4]],
      [[0, 65535], 'UINT16', [2]],
      [[-2147483648, 2147483647], 'INT32', [2]],
      [[4294967295, 0], 'UINT32', [2]],
      [[-9007199254740991, 9007199254740991], 'INT64', [2]],
      [[0, 9007199254740991], 'UINT64', [2]],
      [[1e308, -1e-308], 'FP64', [2]],
      [[7], 'FP32', []],
    ];
    for (const [data, dt, shape] of cases) {
      const body = infer(data, dt, shape);
      denseOf(body);
      const r = same(body, meta(dt, shape)) as { tensors: unknown[] };
      assert.equal(r.tensors.length, 1);
    }
    // Keys in any order, whitespace, escapes and UTF-8 in strings, id and parameters kept.
    const body = Buffer.from(
      ' {\n "id" : "r\\u00e9q-1 ✓", "parameters": {"timeout": 5000},\t"inputs" : [ { "data" : [ 1 , 2 ] ,"shape":[2],"name":"x","datatype":"FP32"} ] } ',
    );
    const r = same(body, meta('FP32', [2])) as { id: string; timeoutMs: number };
    assert.equal(r.id, 'réq-1 ✓');
    assert.equal(r.timeoutMs, 5);
  });

  it('refuses NaN, Infinity and numbers beyond the datatype with the JSON.parse path codes and messages', () => {
    const bodies: Array<[Buffer, Datatype]> = [
      [Buffer.from('{"inputs":[{"name":"x","datatype":"FP32","shape":[2],"data":[1,NaN]}]}'), 'FP32'],
      [Buffer.from('{"inputs":[{"name":"x","datatype":"FP32","shape":[2],"data":[1,Infinity]}]}'), 'FP32'],
      [Buffer.from('{"inputs":[{"name":"x","datatype":"FP32","shape":[2],"data":[1,-1e400]}]}'), 'FP32'],
      [infer([1, 2147483648], 'INT32', [2]), 'INT32'],
      [infer([1, 2.5], 'INT32', [2]), 'INT32'],
      [infer([1, -1], 'UINT8', [2]), 'UINT8'],
      [
        Buffer.from('{"inputs":[{"name":"x","datatype":"INT64","shape":[2],"data":[1,9007199254740993]}]}'),
        'INT64',
      ],
      [infer([0, -1], 'UINT64', [2]), 'UINT64'],
      [infer([1, 0], 'BOOL', [2]), 'BOOL'],
      [infer([1, 2], 'BYTES', [2]), 'BYTES'],
    ];
    for (const [body, dt] of bodies) {
      const r = same(body, meta(dt, [2]));
      assert.equal((r as { code?: string }).code, 'KAPOK_INFERENCE_BAD_REQUEST', body.toString());
    }
  });

  it('refuses wrong types, ragged and mis-shaped data, too many or too few elements, as before', () => {
    const m = meta('FP32', [2, 2]);
    const bodies = [
      infer([1, 2, 3], 'FP32', [2, 2]),
      infer([1, 2, 3, 4, 5], 'FP32', [2, 2]),
      infer([[1, 2], [3]], 'FP32', [2, 2]),
      infer([[1, 2, 3], [4]], 'FP32', [2, 2]),
      infer([[1, 2], 3, 4], 'FP32', [2, 2]),
      infer([1, 2, [3, 4]], 'FP32', [2, 2]),
      infer([[[1, 2]], [[3, 4]]], 'FP32', [2, 2]),
      infer(
        [
          [1, 2],
          [3, '4'],
        ],
        'FP32',
        [2, 2],
      ),
      infer(
        [
          [1, 2],
          [3, true],
        ],
        'FP32',
        [2, 2],
      ),
      infer(
        [
          [1, 2],
          [3, null],
        ],
        'FP32',
        [2, 2],
      ),
      infer(
        [
          [1, 2],
          [3, {}],
        ],
        'FP32',
        [2, 2],
      ),
      infer([[], []], 'FP32', [2, 2]),
      infer([], 'FP32', [2, 2]),
      infer({ a: 1 }, 'FP32', [2, 2]),
      infer('1,2,3,4', 'FP32', [2, 2]),
      infer([1, 2, 3, 4], 'FP64', [2, 2]),
      infer([1, 2, 3, 4], 'FP32', [2, 3]),
      Buffer.from('{"inputs":[{"name":"x","datatype":"FP32","shape":[2,2],"data":[1,2,3,4,]}]}'),
      Buffer.from('{"inputs":[{"name":"x","datatype":"FP32","shape":[2,2],"data":[01,2,3,4]}]}'),
      Buffer.from('{"inputs":[{"name":"x","datatype":"FP32","shape":[2,2],"data":[1.,2,3,4]}]}'),
      Buffer.from('{"inputs":[{"name":"x","datatype":"FP32","shape":[2,2],"data":[.5,2,3,4]}]}'),
      Buffer.from('{"inputs":[{"name":"x","datatype":"FP32","shape":[2,2],"data":[1e,2,3,4]}]}'),
      Buffer.from('{"inputs":[{"name":"x","datatype":"FP32","shape":[2,2],"data":[+1,2,3,4]}]}'),
      Buffer.from('{"inputs":[{"name":"x","datatype":"FP32","shape":[2,2],"data":[1 2,3,4]}]}'),
      Buffer.from('{"inputs":[{"name":"x","datatype":"FP32","shape":[2,2],"data":[1,2,3,4]}]} x'),
      Buffer.from('{"inputs":[{"name":"x\u0001","datatype":"FP32","shape":[2,2],"data":[1,2,3,4]}]}'),
      Buffer.from('\ufeff{"inputs":[]}'),
      Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]), // invalid UTF-8 in a key
      Buffer.alloc(0),
      Buffer.from('[]'),
      Buffer.from('"inputs"'),
    ];
    for (const body of bodies) {
      const r = same(body, m);
      assert.equal((r as { code?: string }).code, 'KAPOK_INFERENCE_BAD_REQUEST', body.toString());
      assert.ok((r as { message: string }).message.length > 10);
    }
  });

  it('several inputs in one body, the reused read buffer growing between them, keep their own values', () => {
    const inputs: TensorMeta[] = [
      { name: 'a', datatype: 'FP32', shape: [-1, 3000] },
      { name: 'b', datatype: 'FP32', shape: [-1, 1000] },
      { name: 'c', datatype: 'FP32', shape: [-1, 5000] },
    ];
    const data = (n: number, k: number) => Array.from({ length: n }, (_, i) => Math.sin(i * k) * 3);
    const body = Buffer.from(
      JSON.stringify({
        inputs: [
          { name: 'b', datatype: 'FP32', shape: [1, 1000], data: data(1000, 1) },
          { name: 'c', datatype: 'FP32', shape: [1, 5000], data: [data(5000, 2)] },
          { name: 'a', datatype: 'FP32', shape: [1, 3000], data: data(3000, 3) },
        ],
      }),
    );
    for (let round = 0; round < 2; round++) {
      const r = same(body, inputs) as { tensors: Array<{ name: string; data: ArrayBuffer }> };
      assert.deepEqual(
        r.tensors.map((t) => [t.name, new Float32Array(t.data)[7]]),
        [
          ['b', Math.fround(Math.sin(7) * 3)],
          ['c', Math.fround(Math.sin(14) * 3)],
          ['a', Math.fround(Math.sin(21) * 3)],
        ],
      );
    }
  });

  it('a __proto__ key is an own property, as JSON.parse makes it (the scanner leaves it to JSON.parse)', () => {
    const body = Buffer.from(
      '{"__proto__":{"inputs":[]},"inputs":[{"name":"x","datatype":"FP32","shape":[2],"data":[1,2]}]}',
    );
    assert.equal(scanInferBody(body), undefined);
    const r = same(body, meta('FP32', [2])) as { tensors: unknown[] };
    assert.equal(r.tensors.length, 1);
  });

  it('every truncation of a valid body is refused like JSON.parse refuses it', () => {
    const full = infer(
      [
        [1.5, -2e-3],
        [3, 4.25],
      ],
      'FP32',
      [2, 2],
    );
    for (let n = 0; n < full.length; n++) {
      const r = same(full.subarray(0, n), meta('FP32', [2, 2]));
      assert.equal((r as { code?: string }).code, 'KAPOK_INFERENCE_BAD_REQUEST');
    }
  });

  it('depth bombs and long exponents are refused or read without a stack overflow', () => {
    const m = meta('FP32', [1]);
    for (const bomb of [
      `{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":${'['.repeat(100_000)}1${']'.repeat(100_000)}}]}`,
      `{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":${'['.repeat(100_000)}`,
      `{"inputs":[${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}]}`,
      `{"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}]}`,
    ]) {
      const r = same(Buffer.from(bomb), m);
      assert.equal((r as { code?: string }).code, 'KAPOK_INFERENCE_BAD_REQUEST');
    }
    const r = same(
      Buffer.from(
        `{"inputs":[{"name":"x","datatype":"FP32","shape":[2],"data":[1e${'0'.repeat(400)}1,1e-${'9'.repeat(30)}]}]}`,
      ),
      meta('FP32', [2]),
    ) as { tensors: Array<{ data: ArrayBuffer }> };
    assert.deepEqual(Array.from(new Float32Array(r.tensors[0]?.data as ArrayBuffer)), [10, 0]);
  });
});
