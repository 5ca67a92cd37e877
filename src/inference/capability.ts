import { isAbsolute, resolve } from 'node:path';
import { Counter } from 'prom-client';
import { VERSION } from '../core/version.js';
import type { Capability, CapabilityContext } from '../ports/capability.js';
import type { InferenceConfig, ModelDefaults } from './config.js';
import { createInferenceMetrics } from './metrics.js';
import { Repository } from './models/repository.js';
import { inferencePort } from './port.js';
import { BodyDecoder } from './protocol/body-decoder.js';
import { inferenceRoutes } from './protocol/rest.js';
import { planInference } from './reconfigure.js';
import { InferenceService } from './service.js';

/**
 * Inference server: ONNX models from a repository folder, served over the Open Inference Protocol
 * (REST on /v2, gRPC on grpc.port). Every session runs on worker threads (see execution/runner.ts).
 */

/** Live instances, so tests in the same process can reach a runner's test hooks (stall, crash). */
export const liveInstances = new Set<InferenceService>();

export async function createInference(ctx: CapabilityContext<InferenceConfig>): Promise<Capability> {
  const cfg = ctx.config;
  const logger = ctx.logger.child({ capability: 'inference' });
  const metrics = createInferenceMetrics(ctx.metrics.registry);
  // auto: one NUMA node's CPUs, as the wiring point detected them; 1 where none was handed over.
  const resolveDefaults = (d: InferenceConfig['defaults']): ModelDefaults => ({
    ...d,
    intraOpThreads:
      d.intraOpThreads === 'auto' ? (ctx.shared.platform?.intraOpThreads ?? 1) : d.intraOpThreads,
  });
  const root = isAbsolute(cfg.repository) ? cfg.repository : resolve(process.cwd(), cfg.repository);
  const repo = new Repository({
    root,
    defaults: resolveDefaults(cfg.defaults),
    overrides: cfg.models,
    pollIntervalMs: cfg.pollIntervalMs,
    logger,
    metrics,
    onChanged: (model, action) =>
      void ctx.events
        .publish('inference.model.changed', { model, action })
        .catch((err: unknown) =>
          logger.warn(
            { model, action, reason: (err as Error).message },
            'inference.model.changed not published',
          ),
        ),
  });
  // Each instance has its own model repository: another's load or unload is noted (log and
  // metric), not copied; an operator loads a model on each instance that should serve it.
  const fleetChanges = new Counter({
    name: 'kapok_inference_fleet_model_changes_total',
    help: 'Model loads and unloads announced by other instances (inference.model.changed).',
    labelNames: ['action'] as const,
    registers: [ctx.metrics.registry],
  });
  const offModels = ctx.events.subscribe(['inference.model.changed'], (e) => {
    if (e.origin === ctx.events.instanceId) return;
    fleetChanges.inc({ action: String(e.data.action) === 'unload' ? 'unload' : 'load' });
    logger.info(
      { model: e.data.model, action: e.data.action, from: e.origin },
      'model changed on another instance',
    );
  });
  const service = new InferenceService(repo, metrics, logger);
  // Bodies from 64 KiB are parsed off the event loop (a 1 MB JSON tensor takes ~10 ms to parse).
  const decoder = new BodyDecoder({ threshold: 64 * 1024, maxPending: 256 });
  let scanned = false;
  let grpc: { port: number; close(): Promise<void> } | null = null;

  ctx.health.register({
    name: 'inference',
    kind: 'capability',
    check: () => ({
      ready: scanned,
      detail: { repository: root, versions: repo.index().length, grpcPort: grpc?.port ?? null },
    }),
  });

  // Model control, like Triton's, but under Kapok's one admin rule (core/http/admin-auth.ts).
  const admin = ctx.adminGuard({
    token: cfg.adminToken,
    key: 'inference.adminToken',
    what: 'model control',
  });
  return {
    name: 'inference',
    // Batch inference from jobs runs here, through the same service as /v2 (ports/inference.ts).
    provides: { inference: inferencePort(service) },
    async routes(app) {
      await app.register(
        (scope) =>
          inferenceRoutes(scope, {
            service,
            serverName: 'kapok',
            serverVersion: VERSION,
            maxRequestBytes: cfg.maxRequestBytes,
            decoder,
            admin,
            isReady: () => scanned && !ctx.health.stopping,
          }),
        { prefix: '/v2' },
      );
    },
    reconfigure: (next, prev) =>
      planInference(next as InferenceConfig, prev as InferenceConfig, repo, resolveDefaults),
    async start() {
      await repo.start();
      scanned = true;
      const { startGrpcServer } = await import('./protocol/grpc-server.js');
      try {
        grpc = await startGrpcServer({
          service,
          port: ctx.shared.grpc.port,
          host: ctx.shared.http.host,
          maxMessageBytes: cfg.maxRequestBytes,
          serverVersion: VERSION,
          isReady: () => scanned && !ctx.health.stopping,
          overallReady: async () => (await ctx.health.readiness()).status === 'ready',
          logger,
          admin,
          audit: ctx.ports.audit,
        });
      } catch (err) {
        // stop() is only called for capabilities that started: end the workers here.
        await repo.close();
        await decoder.close();
        throw err;
      }
      liveInstances.add(service);
      logger.info(
        { repository: root, grpcPort: grpc.port, versions: repo.index().length },
        'inference ready',
      );
      if (repo.index().length === 0)
        logger.info(
          { repository: root },
          `inference: no models in ${root} yet; add one as ${root}/<name>/1/model.onnx (picked up within inference.pollIntervalMs, or kapok models load <name>)`,
        );
    },
    async stop() {
      offModels();
      liveInstances.delete(service);
      await grpc?.close();
      await repo.close();
      await decoder.close();
    },
  };
}
