import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { startInference } from '../inference/setup.js';

/**
 * Model control is recorded over both protocols (docs/audit.md#what-is-recorded): REST through the
 * admin guard's hook, gRPC by the gRPC server itself (it has no HTTP request).
 */

const TOKEN = 'inference-admin-token-0123456789';

describe('audit: model control over REST and gRPC', () => {
  it('records load/unload with outcome, and a refused gRPC call as admin.auth.denied', async () => {
    const s = await startInference({ adminToken: TOKEN }, undefined, {
      audit: { enabled: true, kek: '00112233445566778899aabbccddeeff' },
    });
    try {
      const PROTO = new URL('../../src/inference/protocol/grpc_predict_v2.proto', import.meta.url).pathname;
      // biome-ignore lint/suspicious/noExplicitAny: dynamic client from proto-loader
      const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO, { keepCase: true })) as any;
      const client = new pkg.inference.GRPCInferenceService(
        `127.0.0.1:${s.grpcPort}`,
        grpc.credentials.createInsecure(),
      );
      const call = (method: string, model: string, md: grpc.Metadata) =>
        new Promise<unknown>((resolve, reject) =>
          client[method]({ model_name: model }, md, (err: Error | null, res: unknown) =>
            err ? reject(err) : resolve(res),
          ),
        );
      const md = new grpc.Metadata();
      md.set('authorization', `Bearer ${TOKEN}`);
      await assert.rejects(call('RepositoryModelLoad', 'conv', new grpc.Metadata()));
      await call('RepositoryModelUnload', 'conv', md);
      await assert.rejects(call('RepositoryModelLoad', 'no-such-model', md));
      client.close();
      assert.equal(
        (await s.post('/v2/repository/models/conv/load', {}, { authorization: `Bearer ${TOKEN}` })).status,
        200,
      );
      const rows = await s.app.store.query<{
        actor: string;
        action: string;
        target: string;
        outcome: string;
      }>("SELECT actor, action, target, outcome FROM audit_log WHERE action <> 'kapok.start' ORDER BY seq");
      assert.deepEqual(
        rows.map((r) => [r.actor, r.action, r.target, r.outcome]),
        [
          ['unauthenticated', 'admin.auth.denied', 'inference:inference.model.load', 'denied'],
          ['inference.adminToken', 'inference.model.unload', 'conv', 'ok'],
          ['inference.adminToken', 'inference.model.load', 'no-such-model', 'failed'],
          ['inference.adminToken', 'inference.model.load', 'conv', 'ok'],
        ],
      );
    } finally {
      await s.stop();
    }
  });
});
