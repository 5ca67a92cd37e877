import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { KapokError } from '../../core/errors.js';
import type { AdminGuard, RouteRoles } from '../../core/http/admin-auth.js';
import { errorHandler } from '../../core/http/errors.js';
import type { InferenceService } from '../service.js';
import { jsonData } from '../tensors/json.js';
import { toRaw } from '../tensors/raw.js';
import type { BodyDecoder } from './body-decoder.js';
import { buildJob } from './checks.js';
import { OIP_EXTENSIONS } from './extensions.js';

/**
 * Open Inference Protocol v2 over REST, mounted at /v2. Errors use OIP's `{"error": "..."}` shape
 * with 400/404/413/429/503/504; the catalogue code goes to the log and the `x-kapok-error` header.
 */

export interface RestOptions {
  service: InferenceService;
  serverName: string;
  serverVersion: string;
  maxRequestBytes: number;
  decoder: BodyDecoder;
  /** Guards model control (INFERENCE_ADMIN_ROLES). */
  admin: AdminGuard;
  /** Ready for /v2/health/ready: repository scanned once and not draining. */
  isReady(): boolean;
}

type Params = { model: string; version?: string };

function oipError(reply: FastifyReply, err: KapokError): FastifyReply {
  return reply
    .code(err.status)
    .header('x-kapok-error', err.code)
    .type('application/json; charset=utf-8')
    .send(JSON.stringify({ error: err.message }));
}

/** The role each /v2 route needs (docs/configuration.md#admin-access): OIP is open, model control operator's. */
export const INFERENCE_ADMIN_ROLES: RouteRoles = {
  'GET /': 'public',
  'GET /health/live': 'public',
  'GET /health/ready': 'public',
  'GET /models/:model': 'public',
  'GET /models/:model/versions/:version': 'public',
  'GET /models/:model/ready': 'public',
  'GET /models/:model/versions/:version/ready': 'public',
  'POST /models/:model/infer': 'public',
  'POST /models/:model/versions/:version/infer': 'public',
  'POST /repository/index': 'public',
  'POST /repository/models/:model/load': 'operator',
  'POST /repository/models/:model/unload': 'operator',
};

export async function inferenceRoutes(app: FastifyInstance, opts: RestOptions): Promise<void> {
  const { service } = opts;
  opts.admin.hook(app, INFERENCE_ADMIN_ROLES);

  // OIP clients do not all send application/json: any body on /v2 is JSON, kept as bytes here and
  // parsed once the model is known (large ones on the decoder thread, see body-decoder.ts).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: opts.maxRequestBytes }, (_req, body, done) =>
    done(null, body),
  );
  app.setErrorHandler(errorHandler({ bodyLimitKey: 'inference.maxRequestBytes', send: oipError }));
  app.setNotFoundHandler((req, reply) => {
    oipError(
      reply,
      new KapokError(
        'KAPOK_HTTP_NOT_FOUND',
        `no route for ${req.method} ${req.url.split('?')[0]?.slice(0, 200)}`,
      ),
    );
  });

  app.get('/', async () => ({
    name: opts.serverName,
    version: opts.serverVersion,
    extensions: [...OIP_EXTENSIONS],
  }));
  app.get('/health/live', async () => ({ live: true }));
  app.get('/health/ready', async (_req, reply) =>
    opts.isReady() ? { ready: true } : reply.code(503).send({ ready: false }),
  );

  const metadata = async (req: FastifyRequest<{ Params: Params }>) =>
    service.metadata(req.params.model, req.params.version);
  app.get('/models/:model', metadata);
  app.get('/models/:model/versions/:version', metadata);

  const ready = async (req: FastifyRequest<{ Params: Params }>, reply: FastifyReply) => {
    const r = service.ready(req.params.model, req.params.version);
    // OIP: 200 means ready, a 4xx means not ready.
    if (r === true) return { name: req.params.model, ready: true };
    return reply
      .code(400)
      .header('x-kapok-error', r.code)
      .send({ name: req.params.model, ready: false, error: r.message });
  };
  app.get('/models/:model/ready', ready);
  app.get('/models/:model/versions/:version/ready', ready);

  const infer = async (req: FastifyRequest<{ Params: Params }>, reply: FastifyReply) => {
    const raw = req.body instanceof Buffer ? req.body : Buffer.alloc(0);
    const headerLength = req.headers['inference-header-content-length'];
    let id: string | undefined;
    let binaryOutputs: string[] = [];
    const { version, done } = await service.infer(req.params.model, req.params.version, async (runner) => {
      const parsed = await opts.decoder.decode(
        raw,
        runner.inputs,
        runner.batched ? runner.cfg.maxBatchSize : 0,
        typeof headerLength === 'string' ? headerLength : undefined,
      );
      id = parsed.id;
      binaryOutputs = parsed.binaryOutputs;
      return {
        timeoutMs: parsed.timeoutMs,
        job: (deadline) => buildJob(runner.inputs, runner.outputs, parsed.tensors, parsed.outputs, deadline),
      };
    });
    let out = `{"model_name":${JSON.stringify(req.params.model)},"model_version":${JSON.stringify(version)}`;
    if (id !== undefined) out += `,"id":${JSON.stringify(id)}`;
    out += ',"outputs":[';
    const binary: Buffer[] = [];
    done.outputs.forEach((t, i) => {
      out += `${i ? ',' : ''}{"name":${JSON.stringify(t.name)},"datatype":"${t.datatype}","shape":[${t.shape.join(',')}]`;
      if (binaryOutputs.includes('*') || binaryOutputs.includes(t.name)) {
        const bytes = toRaw(t);
        binary.push(bytes);
        out += `,"parameters":{"binary_data_size":${bytes.length}}}`;
      } else out += `,"data":${jsonData(t)}}`;
    });
    out += ']}';
    if (binary.length === 0) return reply.type('application/json; charset=utf-8').send(out);
    // Binary tensor extension: JSON header, then the outputs' bytes in output order.
    const header = Buffer.from(out, 'utf8');
    return reply
      .type('application/octet-stream')
      .header('inference-header-content-length', header.length)
      .send(Buffer.concat([header, ...binary]));
  };
  const inferOpts = { bodyLimit: opts.maxRequestBytes };
  app.post('/models/:model/infer', inferOpts, infer);
  app.post('/models/:model/versions/:version/infer', inferOpts, infer);

  // Model repository extension.
  app.post('/repository/index', async () => service.repo.index());
  for (const action of ['load', 'unload'] as const)
    app.post<{ Params: Params }>(`/repository/models/:model/${action}`, async (req) => {
      await service.repo[action](req.params.model);
      return {};
    });
}
