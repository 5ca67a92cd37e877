/**
 * The job scheduler's public surface: its factory (wired by src/app.ts), what `kapok jobs` uses,
 * and the pure scheduling core the Kubernetes operator (issue 23) reuses.
 */
export { createJobs, limitsOf, weightsOf, workerGpus } from './capability.js';
export type { JobsConfig } from './config.js';
export * as core from './core.js';
export { type GpuFlag, gpusOf, parseGpuFlag } from './gpus.js';
export { JOBS_MIGRATIONS } from './migrations.js';
export { JobsService } from './service.js';
export { type JobSpec, parseSpec, parseSpecText, type TaskSpec, validateSpec } from './spec.js';
export { PullWorker, type PullWorkerOptions } from './worker.js';
