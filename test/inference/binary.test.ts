import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { TYPES_MODEL_INPUTS } from '../../scripts/onnx-models.js';
import { mlpRow, type Server, startInference } from './setup.js';

/**
 * The REST binary tensor extension (Triton's; its HTTP clients send and ask for binary by default):
 * JSON header of Inference-Header-Content-Length bytes, then raw tensor bytes.
 */

let s: Server;
before(async () => {
  s = await startInference();
});
after(() => s.stop());

async function binaryInfer(model: string, header: unknown, ...parts: Buffer[]) {
  const json = Buffer.from(JSON.stringify(header));
  const res = await request(`${s.base}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(json.length),
    },
    body: Buffer.concat([json, ...parts]),
  });
  const body = Buffer.from(await res.body.arrayBuffer());
  const hl = res.headers['inference-header-content-length'];
  const n = hl === undefined ? body.length : Number(hl);
  return {
    status: res.statusCode,
    json: JSON.parse(body.subarray(0, n).toString()),
    binary: body.subarray(n),
    hl,
  };
}

const f32 = (xs: number[]) => Buffer.from(Float32Array.from(xs).buffer);

describe('inference REST binary tensor extension', () => {
  it('binary input and binary output equal the JSON form', async () => {
    const rows = [mlpRow(1), mlpRow(2)];
    const ref = await s.post('/v2/models/mlp/infer', {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 16], data: rows }],
    });
    const x = f32(rows.flat());
    const r = await binaryInfer(
      'mlp',
      {
        inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 16], parameters: { binary_data_size: x.length } }],
        outputs: [{ name: 'y', parameters: { binary_data: true } }],
      },
      x,
    );
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual(r.json.outputs, [
      { name: 'y', datatype: 'FP32', shape: [2, 4], parameters: { binary_data_size: 32 } },
    ]);
    const y = new Float32Array(
      r.binary.buffer.slice(r.binary.byteOffset, r.binary.byteOffset + r.binary.length),
    );
    assert.deepEqual(Array.from(y), ref.body.outputs[0].data);
    // Binary input, JSON output (no binary_data asked): a plain JSON answer.
    const j = await binaryInfer(
      'mlp',
      {
        inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 16], parameters: { binary_data_size: x.length } }],
      },
      x,
    );
    assert.equal(j.hl, undefined);
    assert.deepEqual(j.json.outputs, ref.body.outputs);
  });

  it('BYTES and mixed JSON/binary inputs; binary_data_output answers every output in binary', async () => {
    // Every datatype of the types model but BYTES (sent below as a binary input of its own).
    const names = Object.keys(TYPES_MODEL_INPUTS).filter((t) => t !== 'BYTES');
    const inputs: unknown[] = names.map((t) => ({
      name: `in_${t}`,
      datatype: t,
      shape: [1],
      data: [t === 'BOOL' ? true : 1],
    }));
    const str = Buffer.concat([Buffer.from([3, 0, 0, 0]), Buffer.from('abc'), Buffer.from([0, 0, 0, 0])]);
    inputs.push({
      name: 'in_BYTES',
      datatype: 'BYTES',
      shape: [2],
      parameters: { binary_data_size: str.length },
    });
    const r = await binaryInfer(
      'types',
      {
        inputs,
        outputs: [{ name: 'out_BYTES' }, { name: 'out_INT8' }],
        parameters: { binary_data_output: true },
      },
      str,
    );
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual(
      r.json.outputs.map((o: { name: string; parameters: { binary_data_size: number } }) => [
        o.name,
        o.parameters.binary_data_size,
      ]),
      [
        ['out_BYTES', str.length],
        ['out_INT8', 1],
      ],
    );
    assert.deepEqual(r.binary, Buffer.concat([str, Buffer.from([1])]));
  });

  it('bad binary framing: 400 naming the input or the header', async () => {
    const x = f32(mlpRow(1));
    const input = (size: number) => ({
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 16], parameters: { binary_data_size: size } }],
    });
    const short = await binaryInfer('mlp', input(128), x);
    assert.equal(short.status, 400);
    assert.match(short.json.error, /input 'x': binary_data_size 128 runs past the 64 binary bytes left/);
    const wrong = await binaryInfer('mlp', input(60), x);
    assert.equal(wrong.status, 400);
    assert.match(wrong.json.error, /input 'x': raw contents are 60 bytes, shape \[1,16\] of FP32 needs 64/);
    const extra = await binaryInfer('mlp', input(64), x, Buffer.alloc(3));
    assert.equal(extra.status, 400);
    assert.match(extra.json.error, /3 bytes no input claims/);
    const both = await binaryInfer('mlp', { inputs: [{ ...input(64).inputs[0], data: mlpRow(1) }] }, x);
    assert.equal(both.status, 400);
    assert.match(both.json.error, /give data or binary_data_size, not both/);
    const res = await request(`${s.base}/v2/models/mlp/infer`, {
      method: 'POST',
      headers: { 'inference-header-content-length': '99999' },
      body: '{}',
    });
    assert.equal(res.statusCode, 400);
    assert.match(
      ((await res.body.json()) as { error: string }).error,
      /Inference-Header-Content-Length 99999 is not within the 2-byte body/,
    );
    const noHeader = await s.post('/v2/models/mlp/infer', input(64));
    assert.equal(noHeader.status, 400);
    assert.match(noHeader.body.error, /binary_data_size needs the Inference-Header-Content-Length header/);
  });

  it('a large binary body goes through the decoder thread the same way', async () => {
    const n = 4096;
    const x = f32(Array.from({ length: n * 16 }, (_, i) => Math.sin(i)));
    const r = await binaryInfer(
      'mlp',
      {
        inputs: [{ name: 'x', datatype: 'FP32', shape: [n, 16], parameters: { binary_data_size: x.length } }],
        parameters: { binary_data_output: true },
      },
      x,
    );
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.binary.length, n * 4 * 4);
    const bad = await binaryInfer(
      'mlp',
      { inputs: [{ name: 'x', datatype: 'FP32', shape: [n, 16], parameters: { binary_data_size: 10 } }] },
      x,
    );
    assert.equal(bad.status, 400);
    assert.match(bad.json.error, /input 'x'/);
  });
});
