import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isKapokError, KapokError } from '../core/errors.js';
import { toKapokError } from '../core/http/server.js';
import type { WireTensor } from './datatypes.js';
import type { InferenceService } from './service.js';
import { bad, buildJob, checkDatatype, checkShape, fromJsonData, jsonData } from './tensors.js';

/**
 * Open Inference Protocol v2 over REST, mounted at /v2. Errors use OIP's `{"error": "..."}` shape
 * with 400/404/413/429/503/504; the catalogue code goes to the log and the `x-kapok-error` header.
 */

export interface RestOptions {
  service: InferenceService;
  serverName: string;
  serverVersion: string;
  maxRequestBytes: number;
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

function timeoutParam(params: unknown): number | undefined {
  // Triton's "timeout" request parameter, in microseconds.
  const t = (params as Record<string, unknown> | undefined)?.timeout;
  if (t === undefined) return undefined;
  if (!Number.isSafeInteger(t) || (t as number) < 0)
    throw bad('parameters.timeout must be a non-negative integer (microseconds)');
  return Math.ceil((t as number) / 1000);
}

export async function inferenceRoutes(app: FastifyInstance, opts: RestOptions): Promise<void> {
  const { service } = opts;

  // OIP clients do not all send application/json; any body on /v2 is read as JSON.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    '*',
    { parseAs: 'string', bodyLimit: opts.maxRequestBytes },
    (_req, body, done) => {
      try {
        done(null, body === '' ? undefined : JSON.parse(body as string));
      } catch (err) {
        done(
          new KapokError(
            'KAPOK_INFERENCE_BAD_REQUEST',
            `request body is not valid JSON: ${(err as Error).message}`,
          ),
          undefined,
        );
      }
    },
  );
  app.setErrorHandler((err, req, reply) => {
    let e = isKapokError(err) ? err : toKapokError(err, opts.maxRequestBytes);
    if (e.code === 'KAPOK_HTTP_BODY_TOO_LARGE')
      e = new KapokError(
        'KAPOK_HTTP_BODY_TOO_LARGE',
        `request body exceeds ${opts.maxRequestBytes} bytes (inference.maxRequestBytes)`,
      );
    if (e.status >= 500) req.log.error({ code: e.code, err }, 'inference request failed');
    else req.log.debug({ code: e.code, msg: e.message }, 'inference request rejected');
    oipError(reply, e);
  });
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
    extensions: ['model_repository'],
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
    const body = req.body as Record<string, unknown> | undefined;
    if (!body || typeof body !== 'object' || Array.isArray(body))
      throw bad('request body must be a JSON object with "inputs"');
    const { inputs, outputs, id, parameters } = body;
    if (!Array.isArray(inputs)) throw bad('"inputs" must be an array of tensors');
    if (id !== undefined && typeof id !== 'string') throw bad('"id" must be a string');
    if (outputs !== undefined && !Array.isArray(outputs)) throw bad('"outputs" must be an array');
    const wanted = ((outputs as unknown[]) ?? []).map((o) => {
      const n = (o as { name?: unknown })?.name;
      if (typeof n !== 'string') throw bad('each of "outputs" needs a "name"');
      return n;
    });
    const { version, done } = await service.infer(
      req.params.model,
      req.params.version,
      (runner, deadline) => {
        const tensors: WireTensor[] = inputs.map((raw: unknown, i: number) => {
          const t = raw as Record<string, unknown>;
          if (!t || typeof t !== 'object' || typeof t.name !== 'string')
            throw bad(`inputs[${i}] needs a "name"`);
          const meta = runner.inputs.find((m) => m.name === t.name);
          if (!meta)
            throw bad(
              `input '${t.name}' is not an input of the model (inputs: ${runner.inputs.map((m) => m.name).join(', ')})`,
            );
          const datatype = checkDatatype(meta, t.datatype);
          const shape = checkShape(meta, t.shape, runner.batched ? runner.cfg.maxBatchSize : 0);
          return fromJsonData(meta.name, datatype, shape, t.data);
        });
        return buildJob(runner.inputs, runner.outputs, tensors, wanted, deadline);
      },
      timeoutParam(parameters),
    );
    let out = `{"model_name":${JSON.stringify(req.params.model)},"model_version":${JSON.stringify(version)}`;
    if (id !== undefined) out += `,"id":${JSON.stringify(id)}`;
    out += ',"outputs":[';
    done.outputs.forEach((t, i) => {
      out += `${i ? ',' : ''}{"name":${JSON.stringify(t.name)},"datatype":"${t.datatype}","shape":[${t.shape.join(',')}],"data":${jsonData(t)}}`;
    });
    out += ']}';
    return reply.type('application/json; charset=utf-8').send(out);
  };
  const inferOpts = { bodyLimit: opts.maxRequestBytes };
  app.post('/models/:model/infer', inferOpts, infer);
  app.post('/models/:model/versions/:version/infer', inferOpts, infer);

  // Model repository extension.
  app.post('/repository/index', async () => service.repo.index());
  app.post('/repository/models/:model/load', async (req: FastifyRequest<{ Params: Params }>) => {
    await service.repo.load(req.params.model);
    return {};
  });
  app.post('/repository/models/:model/unload', async (req: FastifyRequest<{ Params: Params }>) => {
    await service.repo.unload(req.params.model);
    return {};
  });
}
