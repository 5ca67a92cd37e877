import { httpExecutor } from './http.js';
import { processExecutor } from './process.js';
import type { Executor } from './types.js';

export type { Executor, RunContext } from './types.js';

/** The executors by the spec's `run.executor`. */
export const EXECUTORS: Readonly<Record<string, Executor>> = {
  process: processExecutor,
  http: httpExecutor,
  noop: async () => ({ ok: true }),
};
