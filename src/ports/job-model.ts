/**
 * The job model the scheduler capability (src/jobs/) offers the Kubernetes operator: the spec
 * check and the pure scheduling core (readiness, retries with backoff, fit, ordering). The operator
 * maps it onto Kubernetes and decides exactly as the Store-backed scheduler does; src/app.ts hands
 * it over (a capability never imports another).
 */

export type TaskState = 'queued' | 'running' | 'retrying' | 'succeeded' | 'failed' | 'cancelled' | 'skipped';
export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export type FailureClass = 'exit' | 'timeout' | 'lost' | 'spawn' | 'signal' | 'http_5xx' | 'http_error';

export interface Backoff {
  baseS: number;
  factor: number;
  maxS: number;
  jitter: number;
}

export interface ModelTaskSpec {
  name: string;
  needs: string[];
  run: { executor: string; command?: string[]; env?: Record<string, string>; cwd?: string };
  resources: { gpus: number; gpuMemoryMiB: number; cpu: number; memoryMiB: number };
  timeoutS?: number | undefined;
  expectedS?: number | undefined;
  retry: { maxAttempts: number; backoff: Backoff; retryOn?: (number | string)[] | undefined };
  onFailure: 'fail' | 'continue';
  checkpoint?: { everyS: number } | undefined;
}

export interface ModelJobSpec {
  name: string;
  deadline: string | null;
  priority: string;
  tasks: ModelTaskSpec[];
}

export interface DagTask {
  name: string;
  needs: readonly string[];
  state: TaskState;
  onFailure: 'fail' | 'continue';
}

export type RetryDecision =
  | { retry: true; at: number; delayS: number }
  | { retry: false; reason: 'attempts' | 'not_retryable' | 'deadline' };

export interface Gpu {
  index: number;
  freeMiB: number;
}

export interface Capacity {
  gpus: readonly Gpu[];
  cpu: number;
  memoryMiB: number;
  slots: number;
}

export interface JobModel {
  /** Throws KAPOK_JOBS_INVALID_SPEC naming every problem. */
  validateSpec(
    input: unknown,
    limits: { gpus: number; gpuMemoryMiB: number; cpu: number; memoryMiB: number },
    now?: number,
  ): ModelJobSpec;
  readyTasks(tasks: readonly DagTask[]): string[];
  downstream(tasks: readonly Pick<DagTask, 'name' | 'needs'>[], name: string): string[];
  jobStateOf(states: readonly { state: TaskState; onFailure: 'fail' | 'continue' }[]): JobState;
  decideRetry(
    p: { maxAttempts: number; backoff: Backoff; retryOn?: readonly (number | string)[] | undefined },
    attempt: number,
    f: { class: FailureClass; exitCode?: number },
    now: number,
    rand: number,
    deadline: number | null,
    expectedS: number | null,
  ): RetryDecision;
  fitsDeadline(now: number, deadline: number | null, expectedS: number | null): boolean;
  /** The GPUs a task gets on a capacity (best fit), or null. */
  fit(
    c: { gpus: number; gpuMemoryMiB: number; cpu: number; memoryMiB: number },
    cap: Capacity,
  ): number[] | null;
}
