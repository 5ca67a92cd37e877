import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Store } from '../ports/store.js';
import { taskCounts } from './queries.js';

/** kapok_jobs_* metrics (docs/jobs.md#metrics). */
export interface JobsMetrics {
  wait: Histogram;
  run: Histogram<'executor' | 'outcome'>;
  retries: Counter;
  deadlineMisses: Counter;
  taskFailures: Counter;
  jobsFinished: Counter<'state'>;
}

const BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14_400, 86_400];

export function jobsMetrics(
  registry: Registry,
  store: Store,
  gpus: () => { total: number; allocated: number; running: number },
): JobsMetrics {
  new Gauge({
    name: 'kapok_jobs_queue_depth',
    help: 'Tasks queued, retrying (waiting out a backoff) and running, over the whole Store.',
    labelNames: ['state'] as const,
    registers: [registry],
    async collect() {
      const c = await taskCounts(store).catch(() => null);
      if (c) for (const [state, n] of Object.entries(c)) this.set({ state }, n);
    },
  });
  new Gauge({
    name: 'kapok_jobs_gpus',
    help: 'GPUs of this worker: total, and allocated to running tasks.',
    labelNames: ['kind'] as const,
    registers: [registry],
    collect() {
      const g = gpus();
      this.set({ kind: 'total' }, g.total);
      this.set({ kind: 'allocated' }, g.allocated);
    },
  });
  new Gauge({
    name: 'kapok_jobs_running_local',
    help: 'Task attempts this Kapok runs now.',
    registers: [registry],
    collect() {
      this.set(gpus().running);
    },
  });
  return {
    wait: new Histogram({
      name: 'kapok_jobs_wait_seconds',
      help: 'From a task becoming ready (or its backoff ending) to its start.',
      buckets: BUCKETS,
      registers: [registry],
    }),
    run: new Histogram({
      name: 'kapok_jobs_run_seconds',
      help: 'Task attempt run time by executor and outcome.',
      labelNames: ['executor', 'outcome'] as const,
      buckets: BUCKETS,
      registers: [registry],
    }),
    retries: new Counter({
      name: 'kapok_jobs_retries_total',
      help: 'Failed attempts scheduled for a retry.',
      registers: [registry],
    }),
    deadlineMisses: new Counter({
      name: 'kapok_jobs_deadline_misses_total',
      help: 'Tasks failed because they could not finish before their job deadline.',
      registers: [registry],
    }),
    taskFailures: new Counter({
      name: 'kapok_jobs_task_failures_total',
      help: 'Tasks that ended Failed.',
      registers: [registry],
    }),
    jobsFinished: new Counter({
      name: 'kapok_jobs_finished_total',
      help: 'Jobs finished here, by final state.',
      labelNames: ['state'] as const,
      registers: [registry],
    }),
  };
}
