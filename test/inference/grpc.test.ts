import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { mlpRow, type Server, startInference } from './setup.js';

/** OIP gRPC conformance with a client built from the proto file only (as any OIP client would). */

const PROTO = new URL('../../src/inference/protocol/grpc_predict_v2.proto', import.meta.url).pathname;

// biome-ignore lint/suspicious/noExplicitAny: a dynamic client from proto-loader has no static types
type Client = any;
let s: Server;
let client: Client;

before(async () => {
  s = await startInference();
  const def = protoLoader.loadSync(PROTO, {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  // biome-ignore lint/suspicious/noExplicitAny: generated package object
  const pkg = grpc.loadPackageDefinition(def) as any;
  client = new pkg.inference.GRPCInferenceService(
    `127.0.0.1:${s.grpcPort}`,
    grpc.credentials.createInsecure(),
  );
});
after(async () => {
  client.close();
  await s.stop();
});

// biome-ignore lint/suspicious/noExplicitAny: responses are plain objects from proto-loader
function call(method: string, req: unknown, deadlineMs = 10_000): Promise<any> {
  return new Promise((resolve, reject) =>
    client[method](
      req,
      { deadline: Date.now() + deadlineMs },
      (err: grpc.ServiceError | null, res: unknown) => (err ? reject(err) : resolve(res)),
    ),
  );
}

async function rejects(p: Promise<unknown>, code: grpc.status, re: RegExp): Promise<void> {
  await assert.rejects(p, (err: grpc.ServiceError) => {
    assert.equal(err.code, code, err.message);
    assert.match(err.details, re);
    return true;
  });
}

describe('inference gRPC: health and metadata', () => {
  it('ServerLive, ServerReady, ServerMetadata', async () => {
    assert.deepEqual(await call('ServerLive', {}), { live: true });
    assert.deepEqual(await call('ServerReady', {}), { ready: true });
    const m = await call('ServerMetadata', {});
    assert.equal(m.name, 'kapok');
    assert.deepEqual(m.extensions, ['model_repository', 'binary_tensor_data']);
  });

  it('ModelReady and ModelMetadata (with and without version); unknown model is NOT_FOUND', async () => {
    assert.deepEqual(await call('ModelReady', { name: 'mlp' }), { ready: true });
    assert.deepEqual(await call('ModelReady', { name: 'mlp', version: '1' }), { ready: true });
    const m = await call('ModelMetadata', { name: 'mlp', version: '1' });
    assert.equal(m.name, 'mlp');
    assert.deepEqual(m.versions, ['1']);
    assert.equal(m.platform, 'onnxruntime_onnx');
    assert.deepEqual(m.inputs, [{ name: 'x', datatype: 'FP32', shape: ['-1', '16'] }]);
    assert.deepEqual(m.outputs, [{ name: 'y', datatype: 'FP32', shape: ['-1', '4'] }]);
    await rejects(call('ModelMetadata', { name: 'nope' }), grpc.status.NOT_FOUND, /model 'nope'/);
    await rejects(call('ModelReady', { name: 'mlp', version: '7' }), grpc.status.NOT_FOUND, /no version '7'/);
  });
});

describe('inference gRPC: ModelInfer', () => {
  const rows = [mlpRow(1), mlpRow(2)];

  it('typed contents and raw_input_contents give the same outputs as REST', async () => {
    const rest = await s.post('/v2/models/mlp/infer', {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 16], data: rows }],
    });
    const typed = await call('ModelInfer', {
      model_name: 'mlp',
      id: 'g-1',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 16], contents: { fp32_contents: rows.flat() } }],
    });
    assert.equal(typed.id, 'g-1');
    assert.equal(typed.model_version, '1');
    assert.deepEqual(typed.outputs[0].shape, ['2', '4']);
    assert.deepEqual(typed.outputs[0].contents.fp32_contents, rest.body.outputs[0].data);
    assert.deepEqual(typed.raw_output_contents, []);

    const raw = await call('ModelInfer', {
      model_name: 'mlp',
      model_version: '1',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 16] }],
      raw_input_contents: [Buffer.from(Float32Array.from(rows.flat()).buffer)],
    });
    const buf: Buffer = raw.raw_output_contents[0];
    const out = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
    assert.deepEqual(Array.from(out), rest.body.outputs[0].data);
    assert.deepEqual(raw.outputs[0].contents, null);
  });

  it('every datatype round-trips with typed contents and with raw contents (BYTES length-prefixed)', async () => {
    const spec: Record<string, [string, unknown[], (v: unknown[]) => Buffer]> = {
      FP32: ['fp32_contents', [1.5, -2], (v) => Buffer.from(Float32Array.from(v as number[]).buffer)],
      FP64: ['fp64_contents', [1e300, -0.5], (v) => Buffer.from(Float64Array.from(v as number[]).buffer)],
      INT8: ['int_contents', [-128, 127], (v) => Buffer.from(Int8Array.from(v as number[]).buffer)],
      INT16: ['int_contents', [-32768, 5], (v) => Buffer.from(Int16Array.from(v as number[]).buffer)],
      INT32: ['int_contents', [-7, 2147483647], (v) => Buffer.from(Int32Array.from(v as number[]).buffer)],
      INT64: [
        'int64_contents',
        ['-9223372036854775808', '42'],
        (v) => Buffer.from(BigInt64Array.from((v as string[]).map(BigInt)).buffer),
      ],
      UINT8: ['uint_contents', [0, 255], (v) => Buffer.from(Uint8Array.from(v as number[]).buffer)],
      UINT16: ['uint_contents', [1, 65535], (v) => Buffer.from(Uint16Array.from(v as number[]).buffer)],
      UINT32: ['uint_contents', [2, 4294967295], (v) => Buffer.from(Uint32Array.from(v as number[]).buffer)],
      UINT64: [
        'uint64_contents',
        ['18446744073709551615', '3'],
        (v) => Buffer.from(BigUint64Array.from((v as string[]).map(BigInt)).buffer),
      ],
      BOOL: ['bool_contents', [true, false], (v) => Buffer.from((v as boolean[]).map((b) => (b ? 1 : 0)))],
      BYTES: [
        'bytes_contents',
        [Buffer.from('木棉'), Buffer.from('')],
        (v) =>
          Buffer.concat((v as Buffer[]).flatMap((b) => [Buffer.from(Uint32Array.of(b.length).buffer), b])),
      ],
    };
    const typed = await call('ModelInfer', {
      model_name: 'types',
      inputs: Object.entries(spec).map(([dt, [field, values]]) => ({
        name: `in_${dt}`,
        datatype: dt,
        shape: [2],
        contents: { [field]: values },
      })),
    });
    assert.equal(typed.outputs.length, 12);
    for (const o of typed.outputs) {
      const dt = o.name.slice(4);
      const [field, values] = spec[dt] as [string, unknown[], unknown];
      assert.equal(o.datatype, dt);
      assert.deepEqual(o.contents[field], values, dt);
    }
    const names = Object.keys(spec);
    const raw = await call('ModelInfer', {
      model_name: 'types',
      inputs: names.map((dt) => ({ name: `in_${dt}`, datatype: dt, shape: [2] })),
      outputs: names.map((dt) => ({ name: `out_${dt}` })),
      raw_input_contents: names.map((dt) => {
        const [, values, enc] = spec[dt] as [string, unknown[], (v: unknown[]) => Buffer];
        return enc(values);
      }),
    });
    names.forEach((dt, i) => {
      const [, values, enc] = spec[dt] as [string, unknown[], (v: unknown[]) => Buffer];
      assert.equal(raw.outputs[i].name, `out_${dt}`);
      assert.deepEqual(raw.raw_output_contents[i], enc(values), dt);
    });
  });

  it('errors map to status codes: INVALID_ARGUMENT naming the input, NOT_FOUND', async () => {
    const x = (extra: Record<string, unknown>) => ({
      model_name: 'mlp',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 16], ...extra }],
    });
    await rejects(
      call('ModelInfer', x({ contents: { fp32_contents: [1, 2] } })),
      grpc.status.INVALID_ARGUMENT,
      /input 'x': data has 2 elements/,
    );
    await rejects(
      call('ModelInfer', x({ contents: { int_contents: mlpRow(1).map(Math.round) } })),
      grpc.status.INVALID_ARGUMENT,
      /input 'x': datatype FP32 takes its values in contents.fp32_contents/,
    );
    await rejects(
      call('ModelInfer', { ...x({}), raw_input_contents: [Buffer.alloc(10)] }),
      grpc.status.INVALID_ARGUMENT,
      /input 'x': raw contents are 10 bytes, shape \[1,16\] of FP32 needs 64/,
    );
    const nan = Float32Array.from(mlpRow(1));
    nan[3] = Number.NaN;
    await rejects(
      call('ModelInfer', { ...x({}), raw_input_contents: [Buffer.from(nan.buffer)] }),
      grpc.status.INVALID_ARGUMENT,
      /input 'x': element 3 is not a finite number/,
    );
    await rejects(
      call('ModelInfer', { ...x({}), raw_input_contents: [Buffer.alloc(64), Buffer.alloc(64)] }),
      grpc.status.INVALID_ARGUMENT,
      /raw_input_contents has 2 entries for 1 inputs/,
    );
    await rejects(
      call('ModelInfer', x({ datatype: 'INT32', contents: { int_contents: [1] } })),
      grpc.status.INVALID_ARGUMENT,
      /datatype "INT32" does not match/,
    );
    await rejects(call('ModelInfer', x({ shape: [1, 3] })), grpc.status.INVALID_ARGUMENT, /shape \[1,3\]/);
    await rejects(
      call('ModelInfer', { model_name: 'nope', inputs: [] }),
      grpc.status.NOT_FOUND,
      /model 'nope'/,
    );
    await rejects(
      call('ModelInfer', {
        model_name: 'types',
        inputs: [{ name: 'in_BYTES', datatype: 'BYTES', shape: [1] }],
        raw_input_contents: [Buffer.from([9, 0, 0, 0, 65])],
      }),
      grpc.status.INVALID_ARGUMENT,
      /in_BYTES': raw BYTES element 0 runs past the contents/,
    );
  });

  it('repository load and unload over gRPC', async () => {
    assert.deepEqual(await call('RepositoryModelUnload', { model_name: 'conv' }), {
      model_name: 'conv',
      isUnloaded: true,
    });
    assert.deepEqual(await call('ModelReady', { name: 'conv' }), { ready: false });
    assert.deepEqual(await call('RepositoryModelLoad', { model_name: 'conv' }), {
      model_name: 'conv',
      isLoaded: true,
    });
    assert.deepEqual(await call('ModelReady', { name: 'conv' }), { ready: true });
  });
});
