import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import ort from 'onnxruntime-node';
import { request } from 'undici';
import { TYPES_MODEL_INPUTS } from '../../scripts/onnx-models.js';
import { mlpRow, type Server, startInference } from './setup.js';

/** OIP v2 REST conformance: every endpoint, every datatype, the error cases. */

let s: Server;
before(async () => {
  s = await startInference({ maxRequestBytes: 64 * 1024 });
});
after(() => s.stop());

const mlpInfer = (data: unknown, shape: unknown = [2, 16], extra: Record<string, unknown> = {}) =>
  s.post('/v2/models/mlp/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape, data }], ...extra });

describe('inference REST: server and model endpoints', () => {
  it('GET /v2 names the server and its extensions; live and ready answer 200', async () => {
    const meta = await s.get('/v2');
    assert.equal(meta.status, 200);
    assert.equal(meta.body.name, 'kapok');
    assert.match(meta.body.version, /^\d+\.\d+\.\d+/);
    assert.deepEqual(meta.body.extensions, ['model_repository', 'binary_tensor_data']);
    assert.deepEqual(await s.get('/v2/health/live'), { status: 200, body: { live: true } });
    assert.deepEqual(await s.get('/v2/health/ready'), { status: 200, body: { ready: true } });
  });

  it('model metadata shows inputs and outputs from the model itself (-1 for dynamic dims)', async () => {
    const m = await s.get('/v2/models/mlp');
    assert.equal(m.status, 200);
    assert.equal(m.body.name, 'mlp');
    assert.deepEqual(m.body.versions, ['1']);
    assert.equal(m.body.platform, 'onnxruntime_onnx');
    assert.deepEqual(m.body.inputs, [{ name: 'x', datatype: 'FP32', shape: [-1, 16] }]);
    assert.deepEqual(m.body.outputs, [{ name: 'y', datatype: 'FP32', shape: [-1, 4] }]);
    const v = await s.get('/v2/models/conv/versions/1');
    assert.equal(v.status, 200);
    assert.deepEqual(v.body.inputs, [{ name: 'image', datatype: 'FP32', shape: [-1, 1, 8, 8] }]);
  });

  it('unknown model or version: 404 with an OIP error naming it', async () => {
    const a = await s.get('/v2/models/nope');
    assert.equal(a.status, 404);
    assert.match(a.body.error, /model 'nope'/);
    const b = await s.get('/v2/models/mlp/versions/9');
    assert.equal(b.status, 404);
    assert.match(b.body.error, /no version '9'/);
    const c = await mlpInfer([mlpRow(1), mlpRow(2)], [2, 16], {});
    assert.equal(c.status, 200);
    const d = await s.post('/v2/models/nope/infer', { inputs: [] });
    assert.equal(d.status, 404);
    const e = await s.get('/v2/models/nope/ready');
    assert.equal(e.status, 404);
  });

  it('ready endpoints: 200 for a loaded model and version', async () => {
    assert.deepEqual(await s.get('/v2/models/mlp/ready'), {
      status: 200,
      body: { name: 'mlp', ready: true },
    });
    assert.equal((await s.get('/v2/models/mlp/versions/1/ready')).status, 200);
  });

  it('an unknown path under /v2 answers in the OIP error shape', async () => {
    const r = await s.get('/v2/nothing/here');
    assert.equal(r.status, 404);
    assert.equal(typeof r.body.error, 'string');
  });
});

describe('inference REST: infer', () => {
  it('MLP outputs equal a direct onnxruntime run; flat and nested data agree; id is echoed', async () => {
    const rows = [mlpRow(1), mlpRow(2)];
    const nested = await mlpInfer(rows, [2, 16], { id: 'req-7' });
    assert.equal(nested.status, 200, JSON.stringify(nested.body));
    assert.equal(nested.body.id, 'req-7');
    assert.equal(nested.body.model_name, 'mlp');
    assert.equal(nested.body.model_version, '1');
    const flat = await mlpInfer(rows.flat());
    assert.deepEqual(flat.body.outputs, nested.body.outputs);
    assert.equal(flat.body.id, undefined);
    const [out] = nested.body.outputs;
    assert.equal(out.name, 'y');
    assert.deepEqual(out.shape, [2, 4]);
    const session = await ort.InferenceSession.create(join(s.repo, 'mlp/1/model.onnx'));
    const ref = await session.run({ x: new ort.Tensor('float32', Float32Array.from(rows.flat()), [2, 16]) });
    assert.deepEqual(out.data, Array.from(ref.y?.data as Float32Array));
    await session.release();
  });

  it('version path runs that version', async () => {
    const r = await s.post('/v2/models/mlp/versions/1/infer', {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 16], data: mlpRow(3) }],
    });
    assert.equal(r.status, 200);
    assert.equal(r.body.model_version, '1');
  });

  it('every datatype round-trips through the types model (BYTES as strings), outputs selection', async () => {
    const values: Record<string, unknown[]> = {
      FP32: [1.5, -2.25, 0],
      FP64: [1e300, -1e-300, Math.PI],
      INT8: [-128, 0, 127],
      INT16: [-32768, 1, 32767],
      INT32: [-2147483648, 2, 2147483647],
      INT64: [-9007199254740991, 0, 9007199254740991],
      UINT8: [0, 1, 255],
      UINT16: [0, 2, 65535],
      UINT32: [0, 3, 4294967295],
      UINT64: [0, 4, 9007199254740991],
      BOOL: [true, false, true],
      BYTES: ['héllo', '', '木棉'],
    };
    const inputs = Object.entries(values).map(([dt, data]) => ({
      name: `in_${dt}`,
      datatype: dt,
      shape: [3],
      data,
    }));
    const r = await s.post('/v2/models/types/infer', { inputs });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.outputs.length, 12);
    for (const o of r.body.outputs) {
      const dt = o.name.slice(4);
      assert.equal(o.datatype, dt);
      assert.deepEqual(o.shape, [3]);
      assert.deepEqual(o.data, values[dt], dt);
    }
    const sel = await s.post('/v2/models/types/infer', {
      inputs,
      outputs: [{ name: 'out_BYTES' }, { name: 'out_INT8' }],
    });
    assert.equal(sel.status, 200);
    assert.deepEqual(
      sel.body.outputs.map((o: { name: string }) => o.name),
      ['out_BYTES', 'out_INT8'],
    );
  });

  it('INT64/UINT64 beyond 2^53 are accepted as decimal strings and answered exactly', async () => {
    const values: Record<string, unknown[]> = {
      FP32: [0],
      FP64: [0],
      INT8: [0],
      INT16: [0],
      INT32: [0],
      INT64: ['-9223372036854775808'],
      UINT8: [0],
      UINT16: [0],
      UINT32: [0],
      UINT64: ['18446744073709551615'],
      BOOL: [false],
      BYTES: ['a'],
    };
    const inputs = Object.entries(values).map(([dt, data]) => ({
      name: `in_${dt}`,
      datatype: dt,
      shape: [1],
      data,
    }));
    const res = await request(`${s.base}/v2/models/types/infer`, {
      method: 'POST',
      body: JSON.stringify({ inputs, outputs: [{ name: 'out_INT64' }, { name: 'out_UINT64' }] }),
    });
    const text = await res.body.text();
    assert.equal(res.statusCode, 200);
    assert.match(text, /"data":\[-9223372036854775808\]/);
    assert.match(text, /"data":\[18446744073709551615\]/);
  });

  it('conv net: nested [N,1,8,8] data', async () => {
    const img = Array.from({ length: 8 }, (_, y) => Array.from({ length: 8 }, (_, x) => (x + y) / 16));
    const r = await s.post('/v2/models/conv/infer', {
      inputs: [{ name: 'image', datatype: 'FP32', shape: [2, 1, 8, 8], data: [[img], [img]] }],
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.outputs[0].shape, [2, 4]);
    assert.deepEqual(r.body.outputs[0].data.slice(0, 4), r.body.outputs[0].data.slice(4));
  });
});

describe('inference REST: bad requests answer 400 naming the input', () => {
  const cases: Array<[string, unknown, RegExp]> = [
    [
      'wrong input name',
      { inputs: [{ name: 'z', datatype: 'FP32', shape: [1, 16], data: mlpRow(1) }] },
      /input 'z' is not an input/,
    ],
    [
      'wrong datatype',
      { inputs: [{ name: 'x', datatype: 'FP64', shape: [1, 16], data: mlpRow(1) }] },
      /input 'x': datatype "FP64" does not match the model's FP32/,
    ],
    [
      'unknown datatype',
      { inputs: [{ name: 'x', datatype: 'FP8', shape: [1, 16], data: mlpRow(1) }] },
      /input 'x': datatype "FP8"/,
    ],
    [
      'wrong rank',
      { inputs: [{ name: 'x', datatype: 'FP32', shape: [16], data: mlpRow(1) }] },
      /input 'x': shape \[16\] does not match/,
    ],
    [
      'wrong fixed dim',
      { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 15], data: mlpRow(1).slice(1) }] },
      /input 'x': shape \[1,15\]/,
    ],
    [
      'negative dim',
      { inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 16], data: mlpRow(1) }] },
      /input 'x': shape must be/,
    ],
    [
      'too few elements',
      { inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 16], data: mlpRow(1) }] },
      /input 'x': data has 16 elements, shape \[2,16\] needs 32/,
    ],
    [
      'too many elements',
      { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 16], data: [...mlpRow(1), 1] }] },
      /input 'x': data has more than the 16 elements/,
    ],
    [
      'ragged nested rows that add up to the shape',
      {
        inputs: [
          { name: 'x', datatype: 'FP32', shape: [2, 16], data: [[...mlpRow(1), 1], mlpRow(1).slice(1)] },
        ],
      },
      /input 'x': data\[0\] has 17 elements, shape \[2,16\] needs 16/,
    ],
    [
      'nested rows one short',
      { inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 16], data: [mlpRow(1), mlpRow(1).slice(1)] }] },
      /input 'x': data\[1\] has 15 elements/,
    ],
    [
      'nested with the wrong number of rows',
      {
        inputs: [
          { name: 'x', datatype: 'FP32', shape: [1, 16], data: [mlpRow(1).slice(8), mlpRow(1).slice(8)] },
        ],
      },
      /input 'x': data has 2 rows, shape \[1,16\] needs 1/,
    ],
    [
      'rows mixed with elements',
      { inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 16], data: [mlpRow(1), ...mlpRow(1)] }] },
      /input 'x': data mixes arrays and elements/,
    ],
    [
      'NaN as a string',
      { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 16], data: ['NaN', ...mlpRow(1).slice(1)] }] },
      /input 'x': element 0 is "NaN", expected a finite number/,
    ],
    [
      'Infinity as a string',
      {
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 16], data: [...mlpRow(1).slice(1), 'Infinity'] }],
      },
      /element 15 is "Infinity"/,
    ],
    [
      'null element',
      { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 16], data: [null, ...mlpRow(1).slice(1)] }] },
      /element 0 is null/,
    ],
    ['missing input', { inputs: [] }, /input 'x' is missing/],
    [
      'duplicate input',
      { inputs: [0, 1].map(() => ({ name: 'x', datatype: 'FP32', shape: [1, 16], data: mlpRow(1) })) },
      /given twice/,
    ],
    [
      'unknown output',
      {
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 16], data: mlpRow(1) }],
        outputs: [{ name: 'q' }],
      },
      /output 'q' is not an output/,
    ],
    [
      'data not an array',
      { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 16], data: 'abc' }] },
      /input 'x': data must be an array/,
    ],
    ['inputs not an array', { inputs: 'x' }, /"inputs" must be an array/],
    ['id not a string', { id: 5, inputs: [] }, /"id" must be a string/],
    ['body is an array', [1, 2], /JSON object/],
    ['bad timeout parameter', { parameters: { timeout: -5 }, inputs: [] }, /parameters.timeout/],
  ];
  for (const [what, body, re] of cases)
    it(what, async () => {
      const r = await s.post('/v2/models/mlp/infer', body);
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.match(r.body.error, re);
    });

  it('integer and BOOL values are range- and type-checked (types model)', async () => {
    const base = (dt: string, data: unknown[]) => {
      const inputs = Object.keys(TYPES_MODEL_INPUTS).map((t) => ({
        name: `in_${t}`,
        datatype: t,
        shape: [1],
        data: t === dt ? data : t === 'BOOL' ? [true] : t === 'BYTES' ? ['a'] : [0],
      }));
      return s.post('/v2/models/types/infer', { inputs });
    };
    for (const [dt, data, re] of [
      ['INT8', [128], /in_INT8': element 0 is 128/],
      ['UINT8', [-1], /in_UINT8': element 0 is -1/],
      ['INT32', [1.5], /in_INT32': element 0 is 1.5/],
      ['UINT64', ['-1'], /in_UINT64': element 0 is -1, outside/],
      ['INT64', [1e300], /in_INT64'/],
      ['BOOL', [1], /in_BOOL': element 0 is 1, expected true or false/],
      ['BYTES', [5], /in_BYTES': element 0 is 5, expected a string/],
    ] as const) {
      const r = await base(dt, [...data]);
      assert.equal(r.status, 400, `${dt}: ${JSON.stringify(r.body)}`);
      assert.match(r.body.error, re);
    }
  });

  it('malformed JSON: 400; oversized body: 413; both in the OIP shape', async () => {
    const bad = await s.post('/v2/models/mlp/infer', '{"inputs": [');
    assert.equal(bad.status, 400);
    assert.match(bad.body.error, /not valid JSON/);
    const big = await s.post(
      '/v2/models/mlp/infer',
      JSON.stringify({ inputs: [{ data: new Array(40_000).fill(1) }] }),
    );
    assert.equal(big.status, 413);
    assert.match(big.body.error, /exceeds 65536 bytes \(inference.maxRequestBytes\)/);
    const empty = await s.post('/v2/models/mlp/infer', '');
    assert.equal(empty.status, 400);
  });

  it('a body without content type is still read as JSON (OIP clients differ)', async () => {
    const res = await request(`${s.base}/v2/models/mlp/infer`, {
      method: 'POST',
      body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 16], data: mlpRow(1) }] }),
    });
    assert.equal(res.statusCode, 200);
    await res.body.dump();
  });
});

describe('inference REST: repository extension and metrics', () => {
  it('index lists every version with its state; unload makes the model unready; load brings it back', async () => {
    const idx = await s.post('/v2/repository/index', {});
    assert.equal(idx.status, 200);
    assert.deepEqual(
      idx.body.map(
        (e: { name: string; version: string; state: string }) => `${e.name}/${e.version}/${e.state}`,
      ),
      ['conv/1/READY', 'mlp/1/READY', 'types/1/READY'],
    );
    assert.equal((await s.post('/v2/repository/models/conv/unload', {})).status, 200);
    const ready = await s.get('/v2/models/conv/ready');
    assert.equal(ready.status, 400);
    assert.equal(ready.body.ready, false);
    const inf = await s.post('/v2/models/conv/infer', { inputs: [] });
    assert.equal(inf.status, 503);
    assert.match(inf.body.error, /unloaded/);
    assert.equal((await s.post('/v2/repository/models/conv/load', {})).status, 200);
    assert.equal((await s.get('/v2/models/conv/ready')).status, 200);
    const missing = await s.post('/v2/repository/models/ghost/load', {});
    assert.equal(missing.status, 404);
    assert.match(missing.body.error, /ghost/);
    assert.equal((await s.post('/v2/repository/models/ghost/unload', {})).status, 404);
  });

  it('metrics: Triton-style counters and histograms labelled by model and version', async () => {
    await mlpInfer([mlpRow(1), mlpRow(2)]);
    const text = await (await request(`${s.base}/metrics`)).body.text();
    assert.match(text, /kapok_inference_request_success_total\{[^}]*model="mlp",version="1"[^}]*\} [1-9]/);
    assert.match(
      text,
      /kapok_inference_request_failure_total\{[^}]*model="mlp",version="1",reason="bad_request"[^}]*\} [1-9]/,
    );
    assert.match(text, /kapok_inference_exec_count_total\{[^}]*model="mlp"/);
    assert.match(text, /kapok_inference_count_total\{[^}]*model="mlp"/);
    assert.match(text, /kapok_inference_request_duration_seconds_bucket\{/);
    assert.match(text, /kapok_inference_queue_duration_seconds_bucket\{/);
    assert.match(text, /kapok_inference_compute_duration_seconds_bucket\{/);
    assert.match(text, /kapok_inference_queue_depth\{[^}]*model="mlp"/);
    assert.match(text, /kapok_inference_models_loaded\{[^}]*\} 3/);
  });
});

describe('inference REST: hostile nesting', () => {
  it('a body nested 20k deep gets 400 in OIP shape, not 500', async () => {
    const body = `{"inputs":[{"name":"x","datatype":"FP32","shape":[1,16],"data":[1],"parameters":${'['.repeat(20_000)}${']'.repeat(20_000)}}]}`;
    const r = await request(`${s.base}/v2/models/mlp/infer`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(r.statusCode, 400);
    assert.match(
      ((await r.body.json()) as { error: string }).error,
      /nests arrays and objects deeper than 128 levels/,
    );
  });
});
