import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import { freePort } from '../helpers/ports.js';
import { type Server, startInference, until } from './setup.js';

/**
 * gRPC health and reflection with the clients generic tools use: a `grpc.health.v1.Health` client
 * from the standard health.proto (what Kubernetes `grpc:` probes and grpc-health-probe send), and a
 * raw grpc-js reflection client from the standard reflection.proto (what grpcurl and Postman do),
 * which then calls ServerMetadata from the reflected descriptors alone, without Kapok's proto file.
 */

const require = createRequire(import.meta.url);
const OPTS = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };
const HEALTH_PROTO = require.resolve('grpc-health-check/proto/health/v1/health.proto');
const REFLECTION = (v: 'v1' | 'v1alpha') =>
  require.resolve(`@grpc/reflection/build/proto/grpc/reflection/${v}/reflection.proto`);
// protobufjs's descriptor extension (a dependency of proto-loader) decodes FileDescriptorProto.
const descriptor = require('protobufjs/ext/descriptor') as {
  FileDescriptorProto: protobuf.Type;
  FileDescriptorSet: protobuf.Type;
};

// biome-ignore lint/suspicious/noExplicitAny: dynamic clients from proto-loader have no static types
type Any = any;

function healthClient(port: number): Any {
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(HEALTH_PROTO, OPTS)) as Any;
  return new pkg.grpc.health.v1.Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}

function check(client: Any, service: string): Promise<Any> {
  return new Promise((resolve, reject) =>
    client.Check({ service }, { deadline: Date.now() + 5000 }, (err: Error | null, res: Any) =>
      err ? reject(err) : resolve(res),
    ),
  );
}

/** One request over a ServerReflectionInfo stream of reflection `v`. */
function reflect(port: number, v: 'v1' | 'v1alpha', req: Record<string, unknown>): Promise<Any> {
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(REFLECTION(v), OPTS)) as Any;
  const client = new pkg.grpc.reflection[v].ServerReflection(
    `127.0.0.1:${port}`,
    grpc.credentials.createInsecure(),
  );
  return new Promise((resolve, reject) => {
    const stream = client.ServerReflectionInfo();
    stream.on('data', (res: Any) => {
      resolve(res);
      stream.end();
      client.close();
    });
    stream.on('error', reject);
    stream.write(req);
  });
}

describe('gRPC health (grpc.health.v1.Health)', () => {
  let s: Server;
  let client: Any;
  before(async () => {
    s = await startInference({}, undefined, { shutdownDelayMs: 1500 });
    client = healthClient(s.grpcPort);
  });
  after(async () => {
    client.close();
    await s.stop();
  });

  it('Check: overall and the inference service are SERVING; an unknown service is NOT_FOUND', async () => {
    assert.deepEqual(await check(client, ''), { status: 'SERVING' });
    assert.deepEqual(await check(client, 'inference.GRPCInferenceService'), { status: 'SERVING' });
    await assert.rejects(check(client, 'no.Such'), (err: grpc.ServiceError) => {
      assert.equal(err.code, grpc.status.NOT_FOUND);
      assert.match(err.details, /unknown service no\.Such/);
      return true;
    });
  });

  it('Watch streams the current status, then NOT_SERVING when Kapok drains, then ends the stream', async () => {
    const seen: Record<string, string[]> = { '': [], 'inference.GRPCInferenceService': [], 'x.Y': [] };
    const ended: Promise<void>[] = [];
    for (const service of Object.keys(seen)) {
      const call = client.Watch({ service });
      call.on('data', (m: Any) => seen[service]?.push(m.status));
      ended.push(
        new Promise<void>((resolve) => {
          call.on('end', resolve);
          call.on('error', () => resolve());
        }),
      );
    }
    await until(() => Object.values(seen).every((v) => v.length === 1));
    assert.deepEqual(seen, {
      '': ['SERVING'],
      'inference.GRPCInferenceService': ['SERVING'],
      'x.Y': ['SERVICE_UNKNOWN'],
    });
    // shutdownDelayMs: Kapok keeps serving with /readyz 503 first; watchers see it within a poll.
    const stopping = s.app.stop('test');
    await until(() => seen['']?.at(-1) === 'NOT_SERVING', 5000);
    assert.deepEqual(seen['inference.GRPCInferenceService'], ['SERVING', 'NOT_SERVING']);
    await stopping;
    await Promise.all(ended);
    assert.deepEqual(seen[''], ['SERVING', 'NOT_SERVING']);
    assert.deepEqual(seen['x.Y'], ['SERVICE_UNKNOWN']);
  });
});

describe('gRPC health: overall follows every capability, the inference service only inference', () => {
  let s: Server;
  let client: Any;
  before(async () => {
    // Edge consuming from an external broker that is not there: Kapok is not ready, inference is.
    const dead = await freePort();
    s = await startInference({}, undefined, {
      edge: {
        enabled: true,
        mqtt: { mode: 'external', url: `mqtt://127.0.0.1:${dead}`, reconnectMinMs: 1000 },
      },
    });
    client = healthClient(s.grpcPort);
  });
  after(async () => {
    client.close();
    await s.stop();
  });

  it('Check "" is NOT_SERVING while the inference service is SERVING', async () => {
    assert.equal((await s.get('/readyz')).status, 503);
    assert.deepEqual(await check(client, ''), { status: 'NOT_SERVING' });
    assert.deepEqual(await check(client, 'inference.GRPCInferenceService'), { status: 'SERVING' });
  });
});

describe('gRPC server reflection (v1 and v1alpha)', () => {
  let s: Server;
  before(async () => {
    s = await startInference();
  });
  after(() => s.stop());

  for (const v of ['v1', 'v1alpha'] as const)
    it(`${v}: lists the services and returns descriptors a client can call with`, async () => {
      const list = await reflect(s.grpcPort, v, { list_services: '*' });
      const names = list.list_services_response.service.map((x: { name: string }) => x.name);
      assert.ok(names.includes('inference.GRPCInferenceService'), names.join());
      assert.ok(names.includes('grpc.health.v1.Health'), names.join());

      const file = await reflect(s.grpcPort, v, { file_containing_symbol: 'inference.GRPCInferenceService' });
      const protos: Buffer[] = file.file_descriptor_response.file_descriptor_proto;
      assert.ok(protos.length >= 1);
      const set = descriptor.FileDescriptorSet.fromObject({
        file: protos.map((b) => descriptor.FileDescriptorProto.decode(b)),
      });
      // biome-ignore lint/suspicious/noExplicitAny: protobufjs's descriptor extension adds fromDescriptor
      const root = (protobuf.Root as any).fromDescriptor(set) as protobuf.Root;
      const svc = root.lookupService('inference.GRPCInferenceService');
      assert.ok(svc.methods.ModelInfer && svc.methods.ServerMetadata);
      // Call ServerMetadata with types from the reflected descriptors only.
      const reqT = root.lookupType('inference.ServerMetadataRequest');
      const resT = root.lookupType('inference.ServerMetadataResponse');
      const Client = grpc.makeGenericClientConstructor({}, 'x');
      const c = new Client(`127.0.0.1:${s.grpcPort}`, grpc.credentials.createInsecure());
      const meta = await new Promise<Any>((resolve, reject) =>
        c.makeUnaryRequest(
          '/inference.GRPCInferenceService/ServerMetadata',
          (x: object) => Buffer.from(reqT.encode(reqT.fromObject(x)).finish()),
          (b: Buffer) => resT.toObject(resT.decode(b)),
          {},
          (err, res) => (err ? reject(err) : resolve(res)),
        ),
      );
      c.close();
      assert.equal(meta.name, 'kapok');
      assert.deepEqual(meta.extensions, ['model_repository', 'binary_tensor_data']);
    });

  it('an unknown symbol is answered with NOT_FOUND in the stream, not a broken stream', async () => {
    const res = await reflect(s.grpcPort, 'v1', { file_containing_symbol: 'no.such.Symbol' });
    assert.equal(res.error_response.error_code, grpc.status.NOT_FOUND);
  });
});
