import { KapokError } from '../core/errors.js';
import { sm3 } from '../crypto/sm3.js';
import type { Store } from '../ports/store.js';
import type { JobState, TaskState } from './core.js';

/** Reading jobs and their DAG, and the checkpoints of tasks (docs/jobs.md#api). */

export interface JobSummary {
  id: string;
  name: string;
  state: JobState;
  priority: string;
  deadline: string | null;
  reason: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  openTasks: number;
}

export interface AttemptView {
  attempt: number;
  state: string;
  owner: string;
  gpus: number[];
  failure: string | null;
  exitCode: number | null;
  startedAt: string;
  finishedAt: string | null;
  output?: string | null;
}

export interface TaskView {
  name: string;
  state: TaskState;
  needs: string[];
  executor: string;
  attempt: number;
  reason: string | null;
  readyAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  attempts: AttemptView[];
}

const iso = (v: unknown) => (v === null || v === undefined ? null : new Date(Number(v)).toISOString());

interface JobRow {
  id: string;
  name: string;
  state: JobState;
  priority: string;
  deadline: unknown;
  reason: string | null;
  created_at: unknown;
  started_at: unknown;
  finished_at: unknown;
  open_tasks: unknown;
}

const summary = (r: JobRow): JobSummary => ({
  id: r.id,
  name: r.name,
  state: r.state,
  priority: r.priority,
  deadline: iso(r.deadline),
  reason: r.reason,
  createdAt: iso(r.created_at) as string,
  startedAt: iso(r.started_at),
  finishedAt: iso(r.finished_at),
  openTasks: Number(r.open_tasks),
});

const JOB_COLS =
  'id, name, state, priority, deadline, reason, created_at, started_at, finished_at, open_tasks';

/** A job with its DAG: every task's state, needs and attempts (outputs only with `outputs`). */
export async function getJob(
  store: Store,
  id: string,
  outputs = false,
): Promise<(JobSummary & { tasks: TaskView[] }) | null> {
  const [j] = await store.query<JobRow>(`SELECT ${JOB_COLS} FROM jobs WHERE id = ?`, [id]);
  if (!j) return null;
  const tasks = await store.query<{
    name: string;
    state: TaskState;
    spec: string;
    attempt: number;
    reason: string | null;
    ready_at: unknown;
    started_at: unknown;
    finished_at: unknown;
  }>(
    'SELECT name, state, spec, attempt, reason, ready_at, started_at, finished_at FROM job_tasks WHERE job_id = ? ORDER BY idx',
    [id],
  );
  const attempts = await store.query<{
    task: string;
    attempt: number;
    state: string;
    owner: string;
    gpus: string;
    failure: string | null;
    exit_code: number | null;
    output: string | null;
    started_at: unknown;
    finished_at: unknown;
  }>(
    `SELECT task, attempt, state, owner, gpus, failure, exit_code, ${outputs ? 'output' : 'NULL AS output'}, started_at, finished_at
     FROM job_attempts WHERE job_id = ? ORDER BY task, attempt`,
    [id],
  );
  const byTask = new Map<string, AttemptView[]>();
  for (const a of attempts) {
    const list = byTask.get(a.task) ?? [];
    byTask.set(a.task, list);
    list.push({
      attempt: a.attempt,
      state: a.state,
      owner: a.owner,
      gpus: JSON.parse(a.gpus) as number[],
      failure: a.failure,
      exitCode: a.exit_code,
      startedAt: iso(a.started_at) as string,
      finishedAt: iso(a.finished_at),
      ...(outputs ? { output: a.output } : {}),
    });
  }
  return {
    ...summary(j),
    tasks: tasks.map((t) => {
      const spec = JSON.parse(t.spec) as { needs: string[]; run: { executor: string } };
      return {
        name: t.name,
        state: t.state,
        needs: spec.needs,
        executor: spec.run.executor,
        attempt: t.attempt,
        reason: t.reason,
        readyAt: iso(t.ready_at),
        startedAt: iso(t.started_at),
        finishedAt: iso(t.finished_at),
        attempts: byTask.get(t.name) ?? [],
      };
    }),
  };
}

export interface ListQuery {
  state?: JobState;
  /** Jobs created before this (ms), for paging newest first. */
  before?: number;
  limit: number;
}

export async function listJobs(store: Store, q: ListQuery): Promise<JobSummary[]> {
  const where: string[] = [];
  const params: Array<string | number> = [];
  if (q.state) {
    where.push('state = ?');
    params.push(q.state);
  }
  if (q.before !== undefined) {
    where.push('created_at < ?');
    params.push(q.before);
  }
  const rows = await store.query<JobRow>(
    `SELECT ${JOB_COLS} FROM jobs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id LIMIT ?`,
    [...params, q.limit],
  );
  return rows.map(summary);
}

/** Queue depth by task state, for metrics and /readyz detail. */
export async function taskCounts(store: Store): Promise<Record<string, number>> {
  const rows = await store.query<{ state: string; n: unknown }>(
    `SELECT state, COUNT(*) AS n FROM job_tasks WHERE state IN ('queued', 'retrying', 'running') GROUP BY state`,
  );
  const out: Record<string, number> = { queued: 0, retrying: 0, running: 0 };
  for (const r of rows) out[r.state] = Number(r.n);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

export const MAX_INLINE_CHECKPOINT = 1024 * 1024;
/** Older checkpoints of a task beyond this many are deleted (only the newest is handed back). */
const KEEP = 3;

export type CheckpointInput = { data: Uint8Array } | { uri: string; sm3: string };

export interface Checkpoint {
  seq: number;
  attempt: number;
  data: Buffer | null;
  uri: string | null;
  sm3: string;
  createdAt: string;
}

/** Checks a reported checkpoint: inline ≤ 1 MiB, or a URI with a 64-hex SM3 digest. */
export function checkCheckpoint(c: unknown): CheckpointInput {
  const v = c as { data?: unknown; uri?: unknown; sm3?: unknown } | null;
  if (v && typeof v.data === 'string') {
    const data = Buffer.from(v.data, 'base64');
    if (data.length > MAX_INLINE_CHECKPOINT)
      throw new KapokError(
        'KAPOK_JOBS_CHECKPOINT_INVALID',
        `inline checkpoint of ${data.length} bytes is over 1 MiB: store it elsewhere and report {uri, sm3}`,
      );
    return { data };
  }
  if (v && typeof v.uri === 'string' && v.uri.length > 0 && v.uri.length <= 2048) {
    if (typeof v.sm3 !== 'string' || !/^[0-9a-f]{64}$/i.test(v.sm3))
      throw new KapokError(
        'KAPOK_JOBS_CHECKPOINT_INVALID',
        'checkpoint uri needs sm3: the SM3 digest of the object as 64 hex digits',
      );
    return { uri: v.uri, sm3: v.sm3.toLowerCase() };
  }
  throw new KapokError(
    'KAPOK_JOBS_CHECKPOINT_INVALID',
    'a checkpoint is {"data": "<base64, at most 1 MiB>"} or {"uri": "<at most 2048 chars>", "sm3": "<64 hex>"}',
  );
}

export async function addCheckpoint(
  store: Store,
  jobId: string,
  task: string,
  attempt: number,
  c: CheckpointInput,
  now = Date.now(),
): Promise<number> {
  return store.transaction(async (tx) => {
    const [m] = await tx.query<{ seq: unknown }>(
      'SELECT MAX(seq) AS seq FROM job_checkpoints WHERE job_id = ? AND task = ?',
      [jobId, task],
    );
    const seq = Number(m?.seq ?? 0) + 1;
    const digest = 'data' in c ? Buffer.from(sm3(c.data)).toString('hex') : c.sm3;
    await tx.execute(
      'INSERT INTO job_checkpoints (job_id, task, seq, attempt, data, uri, sm3, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      [
        jobId,
        task,
        seq,
        attempt,
        'data' in c ? Buffer.from(c.data).toString('base64') : null,
        'uri' in c ? c.uri : null,
        digest,
        now,
      ],
    );
    await tx.execute('DELETE FROM job_checkpoints WHERE job_id = ? AND task = ? AND seq <= ?', [
      jobId,
      task,
      seq - KEEP,
    ]);
    return seq;
  });
}

/** The newest checkpoint of a task, or null. */
export async function latestCheckpoint(
  store: Store,
  jobId: string,
  task: string,
): Promise<Checkpoint | null> {
  const [r] = await store.query<{
    seq: unknown;
    attempt: unknown;
    data: string | null;
    uri: string | null;
    sm3: string;
    created_at: unknown;
  }>(
    'SELECT seq, attempt, data, uri, sm3, created_at FROM job_checkpoints WHERE job_id = ? AND task = ? ORDER BY seq DESC LIMIT 1',
    [jobId, task],
  );
  if (!r) return null;
  return {
    seq: Number(r.seq),
    attempt: Number(r.attempt),
    data: r.data === null ? null : Buffer.from(r.data, 'base64'),
    uri: r.uri,
    sm3: r.sm3,
    createdAt: iso(r.created_at) as string,
  };
}
