import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { secret } from '../core/config/secret.js';

const points = z.number().min(0).max(1_000_000);

/** The `jobs` configuration section: the DAG job scheduler (docs/jobs.md). */
export const jobsSchema = z
  .strictObject({
    /** Schedule and run jobs here. Off by default: tasks run commands on this host. */
    enabled: z.boolean().default(false),
    /** Admin token for /api/jobs and /ws/jobs (role admin for jobs alone); null: admin.tokens or loopback only. */
    adminToken: secret(z.string().min(16)).nullable().default(null),
    /**
     * Pull workers' tokens (`kapok worker --token`): each opens the worker API
     * (/api/jobs/workers/*) and nothing else; admin tokens do not open it. Empty: no pull workers.
     */
    workerTokens: z
      .array(
        z.strictObject({
          name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/),
          token: secret(z.string().min(16)),
        }),
      )
      .max(1000)
      .default([]),
    /** Executors job specs may use here (a spec naming another is refused). */
    executors: z
      .array(z.enum(['process', 'http', 'noop', 'inference']))
      .default(['process', 'http', 'noop', 'inference']),
    /** Most tasks queued, retrying or running at once, over all jobs (a new job beyond it: 429). */
    maxPendingTasks: z.number().int().min(1).max(10_000_000).default(100_000),
    /** Most bytes of a task attempt's output kept (its tail). */
    maxOutputBytes: z
      .number()
      .int()
      .min(0)
      .max(16 * 1024 * 1024)
      .default(64 * 1024),
    /** A running task's lease: a Kapok that stops renewing it for this long loses the task (retried). */
    leaseS: z.number().min(1).max(3600).default(30),
    /** How often leases are renewed (and lost leases looked for); below leaseS / 2. */
    heartbeatS: z.number().min(0.05).max(600).default(5),
    /** How often the queue is looked at when nothing woke the scheduler. */
    pollMs: z.number().int().min(10).max(60_000).default(500),
    /** Candidates read per scheduling pass, the best by class and age; scored in memory. */
    candidates: z.number().int().min(1).max(10_000).default(64),
    /** Largest page of GET /api/jobs. */
    queryMaxLimit: z.number().int().min(1).max(10_000).default(500),
    /** The priority score (docs/jobs.md#scheduling). */
    scoring: z
      .strictObject({
        classes: z
          .strictObject({
            low: points.default(0),
            normal: points.default(100),
            high: points.default(200),
            critical: points.default(300),
          })
          .prefault({}),
        /** Points per second waited: a task waits at most (top class + urgency − its class) / agePerS once capacity frees. */
        agePerS: z.number().positive().max(1_000_000).default(1),
        /** Most points for deadline urgency. */
        urgency: points.default(100),
      })
      .prefault({}),
    /** This Kapok as a worker: what tasks it may run at once. */
    worker: z
      .strictObject({
        /** Tasks at once; null: the number of CPUs; 0: this Kapok runs no tasks (it only schedules). */
        slots: z.number().int().min(0).max(10_000).nullable().default(null),
        /** CPUs tasks may ask for in total; null: the number of CPUs. */
        cpu: z.number().positive().max(100_000).nullable().default(null),
        /** Memory tasks may ask for in total, MiB; 0: not accounted. */
        memoryMiB: z.number().int().min(0).default(0),
        /**
         * `auto`: read nvidia-smi at start (none when absent); `none`; or the GPUs as a list of
         * {index, memoryMiB} (a machine without nvidia-smi, or a test).
         */
        gpus: z
          .union([
            z.enum(['auto', 'none']),
            z
              .array(
                z.strictObject({
                  index: z.number().int().min(0).max(1023),
                  memoryMiB: z.number().int().min(1),
                }),
              )
              .max(1024),
          ])
          .default('auto'),
        /** The nvidia-smi program for gpus: auto. */
        nvidiaSmi: z.string().min(1).default('nvidia-smi'),
      })
      .prefault({}),
  })
  .superRefine((c, ctx) => {
    if (c.heartbeatS * 2 > c.leaseS)
      ctx.addIssue({
        code: 'custom',
        path: ['heartbeatS'],
        message: `must be at most half of jobs.leaseS (${c.leaseS}), or leases run out between renewals`,
      });
  });

export type JobsConfig = z.infer<typeof jobsSchema>;

/** worker.slots and worker.cpu with null resolved to this machine's CPU count. */
export function workerSize(cfg: JobsConfig): { slots: number; cpu: number } {
  const cpus = Math.max(1, availableParallelism());
  return { slots: cfg.worker.slots ?? cpus, cpu: cfg.worker.cpu ?? cpus };
}
