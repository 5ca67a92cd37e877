import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { configSchema } from '../../src/config.js';
import { kapok } from '../helpers/cli.js';
import { type Server, startInference } from './setup.js';

/** Model control is an admin API: a bearer token when inference.adminToken is set. */

const TOKEN = 'inference-admin-token-0123456789';
let s: Server;
before(async () => {
  s = await startInference({ adminToken: TOKEN });
});
after(() => s.stop());

describe('inference model control auth', () => {
  it('REST load/unload need the bearer token; inference and the index do not', async () => {
    const none = await s.post('/v2/repository/models/conv/unload', {});
    assert.equal(none.status, 401);
    assert.match(none.body.error, /Bearer <inference.adminToken>/);
    const wrong = await s.post('/v2/repository/models/conv/unload', {}, { authorization: 'Bearer nope' });
    assert.equal(wrong.status, 401);
    assert.equal((await s.get('/v2/models/conv/ready')).status, 200);
    assert.equal((await s.post('/v2/repository/index', {})).status, 200);
    const ok = await s.post('/v2/repository/models/conv/unload', {}, { authorization: `Bearer ${TOKEN}` });
    assert.equal(ok.status, 200);
    assert.equal((await s.get('/v2/models/conv/ready')).status, 400);
  });

  it('gRPC RepositoryModelLoad without the token is UNAUTHENTICATED; with it, loads', async () => {
    const PROTO = new URL('../../src/inference/protocol/grpc_predict_v2.proto', import.meta.url).pathname;
    // biome-ignore lint/suspicious/noExplicitAny: dynamic client from proto-loader
    const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO, { keepCase: true })) as any;
    const client = new pkg.inference.GRPCInferenceService(
      `127.0.0.1:${s.grpcPort}`,
      grpc.credentials.createInsecure(),
    );
    const load = (md: grpc.Metadata) =>
      new Promise<unknown>((resolve, reject) =>
        client.RepositoryModelLoad({ model_name: 'conv' }, md, (err: Error | null, res: unknown) =>
          err ? reject(err) : resolve(res),
        ),
      );
    await assert.rejects(
      load(new grpc.Metadata()),
      (e: grpc.ServiceError) => e.code === grpc.status.UNAUTHENTICATED,
    );
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${TOKEN}`);
    assert.deepEqual(await load(md), { model_name: 'conv', isLoaded: true });
    client.close();
  });

  it('kapok models sends the configured token', async () => {
    const without = await kapok(['models', 'unload', 'mlp', '--url', s.base]);
    assert.equal(without.code, 1);
    assert.match(without.stderr, /KAPOK_HTTP_UNAUTHORIZED/);
    const withToken = await kapok(['models', 'unload', 'mlp', '--url', s.base], {
      KAPOK_INFERENCE__ADMIN_TOKEN: TOKEN,
    });
    assert.equal(withToken.code, 0, withToken.stderr);
  });
});

describe('inference.adminToken is a secret', () => {
  it('kapok config print shows it as ***', async () => {
    const r = await kapok(['config', 'print', '--json'], { KAPOK_INFERENCE__ADMIN_TOKEN: TOKEN });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stdout.includes(TOKEN));
    assert.equal(JSON.parse(r.stdout).inference.adminToken, '***');
  });
});

describe('inference model control under profile gov', () => {
  // Was a runtime 403; the config check now refuses a gov start whose admin API no token can open.
  it('without any admin token, the configuration is refused naming inference.adminToken', () => {
    const r = configSchema.safeParse({ profile: 'gov', inference: { enabled: true } });
    assert.ok(!r.success);
    const issue = r.error.issues.find((i) => i.path.join('.') === 'inference.adminToken');
    assert.match(String(issue?.message), /profile gov needs an admin token for inference/);
  });
});
