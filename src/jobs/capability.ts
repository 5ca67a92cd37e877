import { messageOf } from '../core/errors.js';
import type { CapabilityFactory } from '../ports/capability.js';
import type { EventType } from '../ports/events.js';
import type { InferencePort } from '../ports/inference.js';
import { type JobsConfig, workerSize } from './config.js';
import type { ScoreWeights } from './core.js';
import { EXECUTORS } from './executors/index.js';
import { inferenceExecutor } from './executors/inference.js';
import { detectGpus, type GpuInfo } from './gpus.js';
import { JobsLive } from './live.js';
import { jobsMetrics } from './metrics.js';
import { JOBS_MIGRATIONS } from './migrations.js';
import { jobsRoutes } from './routes.js';
import { Scheduler } from './scheduler.js';
import { JobsService, type Notice } from './service.js';
import type { WorkerLimits } from './spec.js';
import type { Effects } from './transitions.js';

/** The weights of the score from the config. */
export function weightsOf(cfg: JobsConfig): ScoreWeights {
  return { classes: { ...cfg.scoring.classes }, agePerS: cfg.scoring.agePerS, urgency: cfg.scoring.urgency };
}

/** This worker's GPUs: nvidia-smi (auto), none, or the configured list. */
export async function workerGpus(cfg: JobsConfig): Promise<GpuInfo[]> {
  const g = cfg.worker.gpus;
  if (g === 'none') return [];
  if (g === 'auto') return detectGpus(cfg.worker.nvidiaSmi);
  return g.map((x) => ({ index: x.index, totalMiB: x.memoryMiB, usedMiB: 0 }));
}

/** The largest task this worker can hold: what specs are checked against. */
export function limitsOf(cfg: JobsConfig, gpus: readonly GpuInfo[]): WorkerLimits {
  return {
    gpus: gpus.length,
    gpuMemoryMiB: Math.max(0, ...gpus.map((g) => g.totalMiB)),
    cpu: workerSize(cfg).cpu,
    memoryMiB: cfg.worker.memoryMiB,
  };
}

/**
 * The job scheduler (docs/jobs.md): /api/jobs, /ws/jobs, and a scheduler loop running the tasks
 * that fit this Kapok, durable in the Store. Several Kapoks on one PostgreSQL share the queue.
 */
export const createJobs: CapabilityFactory<JobsConfig> = async (ctx) => {
  const cfg = ctx.config;
  await ctx.store.migrate(JOBS_MIGRATIONS);
  let gpus = await workerGpus(cfg);
  const weights = weightsOf(cfg);
  // The inference executor runs where the inference capability does (its port), nowhere else.
  const executors = cfg.executors.filter((e) => e !== 'inference' || ctx.ports.inference !== undefined);
  const live = new JobsLive();
  const admin = ctx.adminGuard({ token: cfg.adminToken, key: 'jobs.adminToken', what: 'the jobs API' });
  let scheduler: Scheduler | null = null;
  const publish = (type: EventType, data: Record<string, unknown>) =>
    ctx.events
      .publish(type, data)
      .catch((err: unknown) =>
        ctx.logger.warn({ type, reason: messageOf(err) }, 'jobs: event not published'),
      );

  const m = jobsMetrics(ctx.metrics.registry, ctx.store, () => ({
    total: gpus.length,
    allocated: scheduler?.allocatedGpus ?? 0,
    running: scheduler?.running ?? 0,
  }));
  const onEffects = (e: Effects) => {
    if (e.retried) {
      m.retries.inc();
      live.broadcast({
        type: 'task.retrying',
        jobId: e.retried.jobId,
        task: e.retried.task,
        retryAt: new Date(e.retried.at).toISOString(),
      });
    }
    if (e.taskFailed) {
      m.taskFailures.inc();
      if (e.taskFailed.reason.startsWith('deadline') || e.taskFailed.reason.includes('before the deadline'))
        m.deadlineMisses.inc();
      // Every task failure is an event of its job (BullMQ#2918), whatever the job does next.
      void publish('jobs.task.failed', e.taskFailed);
      live.broadcast({ type: 'task.failed', ...e.taskFailed });
    }
    if (e.jobFinished) {
      m.jobsFinished.inc({ state: e.jobFinished.state });
      void publish('jobs.job.finished', e.jobFinished);
      live.broadcast({ type: 'job.finished', ...e.jobFinished });
    }
  };
  const notify = (n: Notice) => {
    if (n.kind === 'effects') return onEffects(n.effects);
    if (n.kind === 'submitted') {
      scheduler?.wake();
      void publish('jobs.job.submitted', { jobId: n.jobId });
      live.broadcast({ type: 'job.submitted', jobId: n.jobId });
      return;
    }
    scheduler?.abort(n.jobId, n.task);
    void publish('jobs.job.cancelled', { jobId: n.jobId, ...(n.task ? { task: n.task } : {}) });
    live.broadcast({ type: 'job.cancelled', jobId: n.jobId, ...(n.task ? { task: n.task } : {}) });
  };
  const limits = limitsOf(cfg, gpus);
  const service = new JobsService({
    store: ctx.store,
    weights,
    limits,
    executors,
    maxPendingTasks: cfg.maxPendingTasks,
    notify,
  });
  scheduler = new Scheduler({
    store: ctx.store,
    owner: ctx.events.instanceId,
    dataDir: ctx.dataDir,
    executors: Object.fromEntries(
      executors.map((e) => [
        e,
        e === 'inference' ? inferenceExecutor(ctx.ports.inference as InferencePort) : EXECUTORS[e],
      ]),
    ) as typeof EXECUTORS,
    weights,
    leaseMs: cfg.leaseS * 1000,
    heartbeatMs: cfg.heartbeatS * 1000,
    pollMs: cfg.pollMs,
    candidates: cfg.candidates,
    slots: workerSize(cfg).slots,
    cpu: workerSize(cfg).cpu,
    memoryMiB: cfg.worker.memoryMiB,
    gpus,
    // auto: nvidia-smi again on each heartbeat (free memory changes; a GPU may come or go).
    ...(cfg.worker.gpus === 'auto'
      ? {
          readGpus: () => detectGpus(cfg.worker.nvidiaSmi),
          onGpus: (g: readonly GpuInfo[]) => {
            gpus = [...g];
            const now = limitsOf(cfg, g);
            // As with pull workers: a spec may ask for as much as the largest GPU set seen since the start.
            limits.gpus = Math.max(limits.gpus, now.gpus);
            limits.gpuMemoryMiB = Math.max(limits.gpuMemoryMiB, now.gpuMemoryMiB);
          },
        }
      : {}),
    maxOutputBytes: cfg.maxOutputBytes,
    logger: ctx.logger,
    onEffects,
    onStarted: (c, waitMs) => {
      m.wait.observe(waitMs / 1000);
      live.broadcast({
        type: 'task.started',
        jobId: c.jobId,
        task: c.task,
        attempt: c.attempt,
        gpus: c.gpus,
      });
    },
    onEnded: (c, runMs, res) => {
      m.run.observe(
        { executor: c.spec.run.executor, outcome: res.ok ? 'succeeded' : 'failed' },
        runMs / 1000,
      );
      if (res.ok)
        live.broadcast({ type: 'task.succeeded', jobId: c.jobId, task: c.task, attempt: c.attempt });
    },
  });
  const unsubscribe: Array<() => void> = [];
  ctx.health.register({
    name: 'jobs',
    kind: 'capability',
    check: async () => {
      await ctx.store.query('SELECT 1 FROM jobs LIMIT 1');
      return {
        ready: true,
        detail: { gpus: gpus.length, slots: workerSize(cfg).slots, running: scheduler?.running ?? 0 },
      };
    },
  });
  return {
    name: 'jobs',
    prefix: '/api/jobs',
    routes: async (app) => {
      await jobsRoutes(app, {
        service,
        admin,
        maxLimit: cfg.queryMaxLimit,
        pull: {
          store: ctx.store,
          tokens: cfg.workerTokens,
          weights,
          leaseMs: cfg.leaseS * 1000,
          heartbeatMs: cfg.heartbeatS * 1000,
          candidates: cfg.candidates,
          maxOutputBytes: cfg.maxOutputBytes,
          executors,
          onStarted: (c, waitMs, owner) => {
            m.wait.observe(waitMs / 1000);
            live.broadcast({
              type: 'task.started',
              jobId: c.jobId,
              task: c.task,
              attempt: c.attempt,
              gpus: c.gpus,
              worker: owner,
            });
          },
          onEnded: (c, res) => {
            if (res.ok)
              live.broadcast({ type: 'task.succeeded', jobId: c.jobId, task: c.task, attempt: c.attempt });
          },
          onEffects,
          onWorker: (w) => {
            // A spec may ask for as much as the largest worker seen since the start.
            limits.gpus = Math.max(limits.gpus, w.gpus);
            limits.gpuMemoryMiB = Math.max(limits.gpuMemoryMiB, w.gpuMemoryMiB);
            limits.cpu = Math.max(limits.cpu, w.cpu);
            limits.memoryMiB = Math.max(limits.memoryMiB, w.memoryMiB);
          },
        },
      });
      ctx.upgrades.register('/ws/jobs', async (req, socket, head) => {
        if (await admin.upgrade(req, socket, 'viewer')) live.upgrade(req, socket, head);
      });
    },
    start: async () => {
      // Other instances' submissions and cancels reach this scheduler at once, not on its next poll.
      unsubscribe.push(
        ctx.events.subscribe(['jobs.job.submitted'], () => scheduler?.wake()),
        ctx.events.subscribe(['jobs.job.cancelled'], (e) => {
          const d = e.data as { jobId?: unknown; task?: unknown };
          if (typeof d.jobId === 'string')
            scheduler?.abort(d.jobId, typeof d.task === 'string' ? d.task : undefined);
        }),
      );
      scheduler?.start();
    },
    stop: async () => {
      for (const u of unsubscribe) u();
      await scheduler?.stop();
      live.close();
    },
  };
};
