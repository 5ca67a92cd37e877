import { KapokError } from '../core/errors.js';
import type { Store } from '../ports/store.js';
import type { ScoreWeights } from './core.js';
import {
  addCheckpoint,
  type Checkpoint,
  checkCheckpoint,
  getJob,
  type JobSummary,
  type ListQuery,
  latestCheckpoint,
  listJobs,
} from './queries.js';
import { type JobSpec, parseSpecText, validateSpec, type WorkerLimits } from './spec.js';
import { submitJob } from './submit.js';
import { cancelJob, cancelTask, type Effects, retryJob } from './transitions.js';

/**
 * What the HTTP API and `kapok jobs` do, on the Store alone: a command works with or without a
 * running scheduler (the scheduler picks up a submitted job on its next pass, or at once when the
 * `jobs.job.submitted` event reaches it).
 */
export interface ServiceOptions {
  store: Store;
  weights: ScoreWeights;
  limits: WorkerLimits;
  executors: readonly string[];
  maxPendingTasks: number;
  /** Told of every transition's effects and of acts (submitted, cancelled, retried), after commit. */
  notify?: (n: Notice) => void;
  now?: () => number;
  rand?: () => number;
}

export type Notice =
  | { kind: 'submitted'; jobId: string }
  | { kind: 'cancelled'; jobId: string; task?: string }
  | { kind: 'effects'; effects: Effects };

export class JobsService {
  readonly #o: ServiceOptions;
  readonly #now: () => number;

  constructor(o: ServiceOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
  }

  /** A spec as text (YAML/JSON) or parsed JSON, checked and stored as a Queued job. */
  async submit(body: unknown): Promise<{ id: string; name: string; state: 'queued'; tasks: number }> {
    const spec = this.check(body);
    const id = await submitJob(this.#o.store, spec, {
      weights: this.#o.weights,
      maxPendingTasks: this.#o.maxPendingTasks,
      now: this.#now(),
    });
    this.#o.notify?.({ kind: 'submitted', jobId: id });
    return { id, name: spec.name, state: 'queued', tasks: spec.tasks.length };
  }

  /** Checks a spec without storing it (`kapok jobs submit --dry-run`). */
  check(body: unknown): JobSpec {
    if (body === undefined || body === null || body === '')
      throw new KapokError(
        'KAPOK_JOBS_INVALID_SPEC',
        'job spec: the body is empty: send the spec as JSON or YAML',
      );
    const raw = typeof body === 'string' ? parseSpecText(body) : body;
    const spec = validateSpec(raw, this.#o.limits, this.#now());
    const off = spec.tasks.findIndex((t) => !this.#o.executors.includes(t.run.executor));
    if (off >= 0)
      throw new KapokError(
        'KAPOK_JOBS_INVALID_SPEC',
        `job spec: tasks[${off}] (${spec.tasks[off]?.name}).run.executor: ${spec.tasks[off]?.run.executor} is not enabled here (jobs.executors: ${this.#o.executors.join(', ')})`,
      );
    return spec;
  }

  list(q: ListQuery): Promise<JobSummary[]> {
    return listJobs(this.#o.store, q);
  }

  async get(id: string, outputs = false) {
    const job = await getJob(this.#o.store, id, outputs);
    if (!job) throw notFound(id);
    return job;
  }

  /** Cancels a job (or one task) from any state; a finished one is left as it is. */
  async cancel(id: string, task?: string) {
    const now = this.#now();
    const e =
      task === undefined
        ? await cancelJob(this.#o.store, id, now)
        : await cancelTask(this.#o.store, id, task, now);
    if (e === null) throw notFound(id, task);
    this.#o.notify?.({ kind: 'cancelled', jobId: id, ...(task !== undefined ? { task } : {}) });
    this.#o.notify?.({ kind: 'effects', effects: e });
    return this.get(id);
  }

  async retry(id: string) {
    const r = await retryJob(this.#o.store, id, {
      weights: this.#o.weights,
      now: this.#now(),
      rand: (this.#o.rand ?? Math.random)(),
    });
    if (r === null) throw notFound(id);
    if (r.requeued === 0)
      throw new KapokError(
        'KAPOK_JOBS_CONFLICT',
        r.state === 'succeeded'
          ? `job ${id} succeeded: nothing to retry`
          : `job ${id} is ${r.state}: retry applies to a failed or cancelled job (cancel it first)`,
      );
    this.#o.notify?.({ kind: 'submitted', jobId: id });
    return this.get(id);
  }

  /** A checkpoint reported for the running attempt of a task (http tasks, remote work). */
  async reportCheckpoint(id: string, task: string, body: unknown): Promise<number> {
    const c = checkCheckpoint(body);
    const [t] = await this.#o.store.query<{ state: string; attempt: number }>(
      'SELECT state, attempt FROM job_tasks WHERE job_id = ? AND name = ?',
      [id, task],
    );
    if (!t) throw notFound(id, task);
    if (t.state !== 'running')
      throw new KapokError(
        'KAPOK_JOBS_CONFLICT',
        `task ${task} is ${t.state}: checkpoints are reported while it runs`,
      );
    return addCheckpoint(this.#o.store, id, task, Number(t.attempt), c, this.#now());
  }

  async checkpoint(id: string, task: string): Promise<Checkpoint> {
    const c = await latestCheckpoint(this.#o.store, id, task);
    if (!c) throw new KapokError('KAPOK_JOBS_NOT_FOUND', `task ${task} of job ${id} has no checkpoint`);
    return c;
  }
}

function notFound(id: string, task?: string): KapokError {
  return new KapokError(
    'KAPOK_JOBS_NOT_FOUND',
    task === undefined ? `no job ${id}` : `job ${id} has no task ${JSON.stringify(task.slice(0, 63))}`,
  );
}
