import { randomUUID } from 'node:crypto';
import { KapokError } from '../core/errors.js';
import type { Queryable, SqlValue, Store } from '../ports/store.js';
import type { ScoreWeights } from './core.js';
import type { JobSpec } from './spec.js';

/** Rows of one multi-row INSERT (bounded well under either engine's parameter limit). */
const CHUNK = 200;

export interface SubmitOptions {
  weights: ScoreWeights;
  /** Refuse the job when the queue would hold more tasks than this (queued, retrying, running). */
  maxPendingTasks: number;
  now?: number;
  id?: string;
}

/** prio_key: class points − agePerS · ready time in seconds (docs/jobs.md#scheduling). */
export const prioKey = (classPoints: number, readyAt: number, w: ScoreWeights) =>
  classPoints - (w.agePerS * readyAt) / 1000;

/** Stores a checked spec as a Queued job, every task Queued; the roots are ready at once. */
export async function submitJob(store: Store, spec: JobSpec, o: SubmitOptions): Promise<string> {
  const now = o.now ?? Date.now();
  const id = o.id ?? randomUUID();
  const deadline = spec.deadline === null ? null : Date.parse(spec.deadline);
  const classPoints = o.weights.classes[spec.priority] ?? 0;
  const dependents = new Map<string, string[]>();
  for (const t of spec.tasks)
    for (const n of t.needs) dependents.set(n, [...(dependents.get(n) ?? []), t.name]);
  await store.transaction(async (tx) => {
    const [p] = await tx.query<{ n: number | bigint }>(
      'SELECT COUNT(*) AS n FROM job_tasks WHERE state IN (?, ?, ?)',
      ['queued', 'retrying', 'running'],
    );
    const pending = Number(p?.n ?? 0);
    if (pending + spec.tasks.length > o.maxPendingTasks)
      throw new KapokError(
        'KAPOK_JOBS_QUEUE_FULL',
        `the queue holds ${pending} tasks; ${spec.tasks.length} more would pass jobs.maxPendingTasks (${o.maxPendingTasks}): retry later or raise the limit`,
      );
    await tx.execute(
      `INSERT INTO jobs (id, name, state, priority, deadline, open_tasks, created_at)
       VALUES (?, ?, 'queued', ?, ?, ?, ?)`,
      [id, spec.name, spec.priority, deadline, spec.tasks.length, now],
    );
    await tx.execute('INSERT INTO job_specs (job_id, spec) VALUES (?, ?)', [id, JSON.stringify(spec)]);
    const rows = spec.tasks.map((t, i): SqlValue[] => {
      const root = t.needs.length === 0;
      return [
        id,
        t.name,
        i,
        new Set(t.needs).size,
        JSON.stringify(dependents.get(t.name) ?? []),
        t.onFailure,
        spec.priority,
        classPoints,
        JSON.stringify(t),
        deadline,
        t.expectedS ?? null,
        t.resources.gpus,
        t.resources.gpuMemoryMiB,
        t.resources.cpu,
        t.resources.memoryMiB,
        root ? now : null,
        root ? prioKey(classPoints, now, o.weights) : null,
        t.run.executor,
      ];
    });
    for (let i = 0; i < rows.length; i += CHUNK) await insertTasks(tx, rows.slice(i, i + CHUNK));
  });
  return id;
}

async function insertTasks(tx: Queryable, rows: SqlValue[][]): Promise<void> {
  const one = `(?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?, ?)`;
  await tx.execute(
    `INSERT INTO job_tasks (job_id, name, idx, state, deps_left, dependents, on_failure, priority, class_points,
       spec, deadline, expected_s, gpus, gpu_memory_mib, cpu, memory_mib, attempt, attempt_base, ready_at, prio_key, executor)
     VALUES ${rows.map(() => one).join(', ')}`,
    rows.flat(),
  );
}
