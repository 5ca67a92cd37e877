import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { isKapokError, KapokError, messageOf } from '../../core/errors.js';
import { type AdminGuard, grpcPeer, logAdminAct } from '../../core/http/admin-auth.js';
import type { Logger } from '../../core/log.js';
import type { AuditTrail } from '../../ports/audit.js';
import type { InferenceService } from '../service.js';
import type { WireTensor } from '../tensors/datatypes.js';
import { bad, buildJob, checkDatatype, checkShape } from './checks.js';
import { OIP_EXTENSIONS } from './extensions.js';
import { fromContents, fromRaw, type TensorContents, toContents, toRaw } from './grpc-contents.js';
import { GrpcHealth, healthProtoPath } from './grpc-health.js';

/**
 * `inference.GRPCInferenceService` (OIP v2) on grpc.port, from grpc_predict_v2.proto, beside
 * `grpc.health.v1.Health` (grpc-health.ts) and server reflection v1 and v1alpha (@grpc/reflection)
 * describing both, so generic tools need no proto file. Errors are gRPC
 * status codes (INVALID_ARGUMENT, NOT_FOUND, UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED,
 * INTERNAL) with the catalogue code in the `x-kapok-error` trailer.
 */

/** The proto next to this file (src, via tsx) or next to the bundle's chunks (dist/bundle, copied there). */
export function protoPath(): string {
  const here = new URL('./grpc_predict_v2.proto', import.meta.url);
  const path = fileURLToPath(here);
  if (!existsSync(path))
    throw new KapokError('KAPOK_START_FAILED', `${path} is missing: rebuild Kapok (npm run build)`);
  return path;
}

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

export interface GrpcOptions {
  service: InferenceService;
  host: string;
  port: number;
  maxMessageBytes: number;
  serverVersion: string;
  isReady(): boolean;
  /** Kapok overall readiness (/readyz), for the health service's "" entry. */
  overallReady(): Promise<boolean>;
  logger: Logger;
  /** Model control (repository load/unload) is an admin act. */
  admin: AdminGuard;
  /** Where model control acts and refusals are recorded (absent: audit disabled). */
  audit?: AuditTrail | undefined;
}

const STATUS: Record<string, grpc.status> = {
  KAPOK_HTTP_UNAUTHORIZED: grpc.status.UNAUTHENTICATED,
  KAPOK_HTTP_ADMIN_DISABLED: grpc.status.PERMISSION_DENIED,
  KAPOK_HTTP_FORBIDDEN: grpc.status.PERMISSION_DENIED,
  KAPOK_INFERENCE_BAD_REQUEST: grpc.status.INVALID_ARGUMENT,
  KAPOK_INFERENCE_MODEL_NOT_FOUND: grpc.status.NOT_FOUND,
  KAPOK_INFERENCE_MODEL_NOT_READY: grpc.status.UNAVAILABLE,
  KAPOK_INFERENCE_QUEUE_FULL: grpc.status.RESOURCE_EXHAUSTED,
  KAPOK_INFERENCE_TIMEOUT: grpc.status.DEADLINE_EXCEEDED,
};

function toStatus(err: unknown): Partial<grpc.StatusObject> {
  const e = isKapokError(err) ? err : new KapokError('KAPOK_INTERNAL', messageOf(err));
  const metadata = new grpc.Metadata();
  metadata.set('x-kapok-error', e.code);
  return { code: STATUS[e.code] ?? grpc.status.INTERNAL, details: e.message, metadata };
}

type Handler<Req, Res> = (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res> | Res;

function unary<Req, Res>(fn: Handler<Req, Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, cb) => {
    Promise.resolve()
      .then(() => fn(call.request, call))
      .then(
        (res) => cb(null, res),
        (err) => cb(toStatus(err)),
      );
  };
}

interface InferInput {
  name: string;
  datatype: string;
  shape: string[];
  contents: TensorContents | null;
}
interface InferRequest {
  model_name: string;
  model_version: string;
  id: string;
  parameters: Record<string, { int64_param?: string; parameter_choice?: string }>;
  inputs: InferInput[];
  outputs: Array<{ name: string }>;
  raw_input_contents: Buffer[];
}

function deadlineMs(
  call: grpc.ServerUnaryCall<unknown, unknown>,
  params: InferRequest['parameters'],
): number | undefined {
  const d = call.getDeadline();
  const at = d instanceof Date ? d.getTime() : Number(d);
  const fromCall = Number.isFinite(at) && at > 0 ? Math.max(1, at - Date.now()) : undefined;
  const us =
    params.timeout?.parameter_choice === 'int64_param' ? Number(params.timeout.int64_param) : undefined;
  const fromParam = us !== undefined && us > 0 ? Math.ceil(us / 1000) : undefined;
  if (fromCall === undefined) return fromParam;
  return fromParam === undefined ? fromCall : Math.min(fromCall, fromParam);
}

export async function startGrpcServer(opts: GrpcOptions): Promise<{ port: number; close(): Promise<void> }> {
  // One definition for both protos: reflection describes exactly what is served.
  const def = protoLoader.loadSync([protoPath(), healthProtoPath], LOADER_OPTIONS);
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    inference: { GRPCInferenceService: grpc.ServiceClientConstructor };
  };
  const { service } = opts;
  const server = new grpc.Server({
    'grpc.max_receive_message_length': opts.maxMessageBytes,
    'grpc.max_send_message_length': opts.maxMessageBytes,
    // Channelz (per-call counters and timestamps for a channelz service Kapok does not expose) off.
    'grpc.enable_channelz': 0,
  });
  const shape = (s: string[]) => s.map((d) => Number(d));
  // Model control is an operator act (docs/configuration.md#admin-access), as over REST.
  const controlCheck = (call: grpc.ServerUnaryCall<unknown, unknown>) =>
    opts.admin.check(call.metadata.get('authorization')[0]?.toString(), grpcPeer(call.getPeer()), 'operator');
  // Model control over gRPC has no HTTP request for the guard's hook: it is recorded here.
  const control = async (
    call: grpc.ServerUnaryCall<unknown, unknown>,
    act: 'load' | 'unload',
    model: string,
    run: () => Promise<void>,
  ) => {
    const ip = grpcPeer(call.getPeer()).remoteAddress ?? null;
    const action = `inference.model.${act}`;
    let who: ReturnType<typeof controlCheck>;
    try {
      who = controlCheck(call);
    } catch (err) {
      await opts.audit?.record({
        actor: 'unauthenticated',
        action: 'admin.auth.denied',
        outcome: 'denied',
        target: `inference:${action}`,
        ip,
      });
      throw err;
    }
    logAdminAct(opts.logger, who, `${act} ${model}`);
    try {
      await run();
    } catch (err) {
      await opts.audit?.record({ actor: who.name, action, outcome: 'failed', target: model, ip });
      throw err;
    }
    await opts.audit?.record({ actor: who.name, action, outcome: 'ok', target: model, ip });
  };
  const meta = (t: { name: string; datatype: string; shape: number[] }) => ({
    ...t,
    shape: t.shape.map(String),
  });

  server.addService(pkg.inference.GRPCInferenceService.service, {
    ServerLive: unary(() => ({ live: true })),
    ServerReady: unary(() => ({ ready: opts.isReady() })),
    ModelReady: unary((req: { name: string; version: string }) => ({
      ready: service.ready(req.name, req.version || undefined) === true,
    })),
    ServerMetadata: unary(() => ({
      name: 'kapok',
      version: opts.serverVersion,
      extensions: [...OIP_EXTENSIONS],
    })),
    ModelMetadata: unary((req: { name: string; version: string }) => {
      const m = service.metadata(req.name, req.version || undefined);
      return { ...m, inputs: m.inputs.map(meta), outputs: m.outputs.map(meta) };
    }),
    ModelInfer: unary(async (req: InferRequest, call) => {
      const raw = req.raw_input_contents;
      if (raw.length > 0 && raw.length !== req.inputs.length)
        throw bad(`raw_input_contents has ${raw.length} entries for ${req.inputs.length} inputs`);
      const { version, done } = await service.infer(
        req.model_name,
        req.model_version || undefined,
        async (runner) => {
          const tensors: WireTensor[] = req.inputs.map((t, i) => {
            const m = runner.inputs.find((x) => x.name === t.name);
            if (!m)
              throw bad(
                `input '${t.name}' is not an input of the model (inputs: ${runner.inputs.map((x) => x.name).join(', ')})`,
              );
            const datatype = checkDatatype(m, t.datatype);
            const dims = checkShape(m, shape(t.shape), runner.batched ? runner.cfg.maxBatchSize : 0);
            if (raw.length > 0) {
              if (t.contents && Object.values(t.contents).some((v) => Array.isArray(v) && v.length > 0))
                throw bad(`input '${t.name}': give contents or raw_input_contents, not both`);
              return fromRaw(m.name, datatype, dims, raw[i] as Buffer);
            }
            return fromContents(m.name, datatype, dims, t.contents);
          });
          return {
            timeoutMs: deadlineMs(call, req.parameters),
            job: (deadline: number) =>
              buildJob(
                runner.inputs,
                runner.outputs,
                tensors,
                req.outputs.map((o) => o.name),
                deadline,
              ),
          };
        },
      );
      const outputs = done.outputs.map((t) => ({
        name: t.name,
        datatype: t.datatype,
        shape: t.shape.map(String),
        ...(raw.length > 0 ? {} : { contents: toContents(t) }),
      }));
      return {
        model_name: req.model_name,
        model_version: version,
        id: req.id,
        outputs,
        raw_output_contents: raw.length > 0 ? done.outputs.map(toRaw) : [],
      };
    }),
    RepositoryModelLoad: unary(async (req: { model_name: string }, call) => {
      await control(call, 'load', req.model_name, () => service.repo.load(req.model_name));
      return { model_name: req.model_name, isLoaded: true };
    }),
    RepositoryModelUnload: unary(async (req: { model_name: string }, call) => {
      await control(call, 'unload', req.model_name, () => service.repo.unload(req.model_name));
      return { model_name: req.model_name, isUnloaded: true };
    }),
  });

  const health = new GrpcHealth({ overall: opts.overallReady, inference: opts.isReady });
  health.addToServer(server);
  new ReflectionService(def).addToServer(server);

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${opts.host}:${opts.port}`, grpc.ServerCredentials.createInsecure(), (err, p) => {
      if (!err) return resolve(p);
      const inUse = /address already in use|EADDRINUSE/i.test(err.message);
      reject(
        new KapokError(
          inUse ? 'KAPOK_START_PORT_IN_USE' : 'KAPOK_START_FAILED',
          inUse
            ? `grpc.port ${opts.port} on ${opts.host} is in use: stop the process holding it or set grpc.port (KAPOK_GRPC__PORT)`
            : `gRPC server cannot listen on ${opts.host}:${opts.port}: ${err.message}`,
          { cause: err },
        ),
      );
    });
  });
  opts.logger.info({ port }, 'inference gRPC listening');
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        health.close();
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 5000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
