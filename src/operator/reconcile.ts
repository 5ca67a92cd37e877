import type { JobModel, ModelJobSpec, ModelTaskSpec, TaskState } from '../ports/job-model.js';
import type { KubeObject } from '../ports/kubernetes.js';
import { type NodeRoom, neverFits, pickNode, take } from './nodes.js';
import { attemptOf, outcome, podName, taskOf } from './pods.js';

/**
 * One AIJob's reconcile as a pure plan: from the AIJob (its spec and the status last written),
 * its Pods and the nodes' room, the Pods to create and the status to write. Level-triggered: the
 * same inputs give the same plan, so a lost event or a restart costs nothing but a rerun. The job
 * model decides readiness, retries (backoff) and the job's state, exactly as the scheduler does.
 */

export interface TaskStatus {
  name: string;
  state: TaskState;
  /** Attempts started (the Pod of the last one is `pod`). */
  attempts: number;
  pod?: string;
  node?: string;
  exitCode?: number;
  message?: string;
  /** When a retrying task's next attempt may start (ISO time). */
  retryAt?: string;
}

export interface Condition {
  type: string;
  status: 'True' | 'False';
  reason: string;
  message: string;
  lastTransitionTime: string;
}

export interface AIJobStatus {
  phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed';
  observedGeneration: number;
  tasksDone: string;
  tasks: TaskStatus[];
  conditions: Condition[];
}

export type AIJobSpec = ModelJobSpec & { image: string; checkpoint?: { claimName: string } };

export interface PlanInput {
  job: KubeObject;
  /** The checked spec, or why it was refused. */
  spec: AIJobSpec | { invalid: string };
  /** The job's Pods (those just created and not yet seen included). */
  pods: readonly KubeObject[];
  /** Every node's room; placements made here are taken out of it. */
  rooms: NodeRoom[];
  model: JobModel;
  now: number;
  rand: () => number;
}

export interface Plan {
  status: AIJobStatus;
  create: Array<{ task: ModelTaskSpec; attempt: number; node: string }>;
  /** Reconcile again after this long (a retry's wait), or null. */
  requeueAfterMs: number | null;
}

const PHASE = {
  queued: 'Pending',
  running: 'Running',
  succeeded: 'Succeeded',
  failed: 'Failed',
  cancelled: 'Failed',
} as const;
const TERMINAL = new Set<TaskState>(['succeeded', 'failed', 'cancelled', 'skipped']);

function conditions(
  prev: readonly Condition[] | undefined,
  next: Omit<Condition, 'lastTransitionTime'>[],
  now: number,
): Condition[] {
  return next.map((c) => {
    const old = prev?.find((p) => p.type === c.type);
    const same = old && old.status === c.status && old.reason === c.reason;
    return { ...c, lastTransitionTime: same ? old.lastTransitionTime : new Date(now).toISOString() };
  });
}

export function plan(i: PlanInput): Plan {
  const prev = (i.job.status ?? {}) as Partial<AIJobStatus>;
  const generation = i.job.metadata.generation ?? 0;
  if ('invalid' in i.spec)
    return {
      status: {
        phase: 'Failed',
        observedGeneration: generation,
        tasksDone: '0/0',
        tasks: [],
        conditions: conditions(
          prev.conditions,
          [{ type: 'Failed', status: 'True', reason: 'InvalidSpec', message: i.spec.invalid }],
          i.now,
        ),
      },
      create: [],
      requeueAfterMs: null,
    };
  const spec = i.spec;
  const deadline = spec.deadline ? Date.parse(spec.deadline) : null;
  const before = new Map((prev.tasks ?? []).map((t) => [t.name, t]));
  const byTask = new Map<string, Map<number, KubeObject>>();
  for (const p of i.pods) {
    const m = byTask.get(taskOf(p)) ?? new Map<number, KubeObject>();
    m.set(attemptOf(p), p);
    byTask.set(taskOf(p), m);
  }
  const tasks = new Map<string, TaskStatus>();
  let requeue: number | null = null;
  const wake = (ms: number) => {
    requeue = requeue === null ? ms : Math.min(requeue, ms);
  };

  for (const t of spec.tasks) {
    const old = before.get(t.name);
    let st: TaskStatus = old ? { ...old } : { name: t.name, state: 'queued', attempts: 0 };
    const pods = byTask.get(t.name) ?? new Map<number, KubeObject>();
    const newest = Math.max(0, ...pods.keys());
    // A Pod newer than the status knows: created before a restart or a lost status write. Adopt it.
    if (newest > st.attempts) st = { name: t.name, state: 'running', attempts: newest };
    if (st.state === 'running') {
      const pod = pods.get(st.attempts);
      const out = pod ? outcome(pod) : null;
      if (pod) st.pod = pod.metadata.name;
      if (pod?.spec?.nodeName) st.node = pod.spec.nodeName;
      const failure =
        out === null
          ? {
              f: { class: 'lost' as const },
              message: `Pod ${podName(i.job.metadata.name, t.name, st.attempts)} is gone (deleted or evicted)`,
            }
          : out.done && !out.ok
            ? { f: out.failure, message: out.message }
            : null;
      if (out?.done && out.ok) st = { ...st, state: 'succeeded', message: 'completed' };
      else if (failure) {
        const d = i.model.decideRetry(
          t.retry,
          st.attempts,
          failure.f,
          i.now,
          i.rand(),
          deadline,
          t.expectedS ?? null,
        );
        const exit =
          failure.f.class === 'exit'
            ? { exitCode: (failure.f as { exitCode?: number }).exitCode as number }
            : {};
        st = d.retry
          ? {
              ...st,
              ...exit,
              state: 'retrying',
              retryAt: new Date(d.at).toISOString(),
              message: `attempt ${st.attempts} ${failure.message}; retry in ${d.delayS.toFixed(1)} s`,
            }
          : {
              ...st,
              ...exit,
              state: 'failed',
              message: `attempt ${st.attempts} ${failure.message}; ${d.reason === 'attempts' ? 'no attempts left' : d.reason === 'deadline' ? 'a retry cannot finish before the deadline' : 'not retryable'}`,
            };
      }
    }
    if (st.state === 'retrying') {
      const at = Date.parse(st.retryAt ?? '') || i.now;
      if (at <= i.now) st = { ...st, state: 'queued' };
      else wake(at - i.now);
    }
    tasks.set(t.name, st);
  }

  const dag = () =>
    spec.tasks.map((t) => ({
      name: t.name,
      needs: t.needs,
      onFailure: t.onFailure,
      state: (tasks.get(t.name) as TaskStatus).state,
    }));
  // A failed task (without onFailure: continue) skips what depends on it.
  for (const t of spec.tasks) {
    const st = tasks.get(t.name) as TaskStatus;
    if (st.state === 'failed' && t.onFailure === 'fail')
      for (const d of i.model.downstream(dag(), t.name)) {
        const ds = tasks.get(d) as TaskStatus;
        if (ds.state === 'queued')
          tasks.set(d, { ...ds, state: 'skipped', message: `skipped: ${t.name} failed` });
      }
  }

  const create: Plan['create'] = [];
  const waiting: string[] = [];
  const never: string[] = [];
  const specOf = new Map(spec.tasks.map((t) => [t.name, t]));
  for (const name of i.model.readyTasks(dag())) {
    const t = specOf.get(name) as ModelTaskSpec;
    const st = tasks.get(name) as TaskStatus;
    if (st.attempts === 0 && !i.model.fitsDeadline(i.now, deadline, t.expectedS ?? null)) {
      tasks.set(name, { ...st, state: 'failed', message: 'cannot finish before the deadline' });
      continue;
    }
    const room = pickNode(t.resources, i.rooms, i.model);
    if (!room) {
      const why = neverFits(t.resources, i.rooms);
      if (why) never.push(`task ${name}: ${why}`);
      else
        waiting.push(
          `task ${name}: waiting for ${t.resources.gpus} free GPU${t.resources.gpus === 1 ? '' : 's'}`,
        );
      continue;
    }
    take(room, t.resources);
    const attempt = st.attempts + 1;
    create.push({ task: t, attempt, node: room.name });
    tasks.set(name, {
      name,
      state: 'running',
      attempts: attempt,
      pod: podName(i.job.metadata.name, name, attempt),
      node: room.name,
    });
  }

  const list = spec.tasks.map((t) => tasks.get(t.name) as TaskStatus);
  const state = i.model.jobStateOf(
    list.map((s, k) => ({ state: s.state, onFailure: (spec.tasks[k] as ModelTaskSpec).onFailure })),
  );
  const done = list.filter((s) => TERMINAL.has(s.state)).length;
  const conds: Omit<Condition, 'lastTransitionTime'>[] = [];
  if (never.length)
    conds.push({ type: 'Scheduled', status: 'False', reason: 'Unschedulable', message: never.join('; ') });
  else if (waiting.length)
    conds.push({
      type: 'Scheduled',
      status: 'False',
      reason: 'WaitingForCapacity',
      message: waiting.join('; '),
    });
  else if (state === 'queued' || state === 'running')
    conds.push({
      type: 'Scheduled',
      status: 'True',
      reason: 'Placed',
      message: 'every ready task has a Pod',
    });
  if (state === 'succeeded')
    conds.push({
      type: 'Succeeded',
      status: 'True',
      reason: 'AllTasksSucceeded',
      message: `${done} tasks succeeded`,
    });
  if (state === 'failed' || state === 'cancelled') {
    const bad = list.filter((s) => s.state === 'failed').map((s) => `${s.name}: ${s.message ?? 'failed'}`);
    conds.push({
      type: 'Failed',
      status: 'True',
      reason: 'TaskFailed',
      message: bad.join('; ') || 'tasks were skipped or cancelled',
    });
  }
  return {
    status: {
      phase: create.length && state === 'queued' ? 'Running' : PHASE[state],
      observedGeneration: generation,
      tasksDone: `${done}/${list.length}`,
      tasks: list,
      conditions: conditions(prev.conditions, conds, i.now),
    },
    create,
    requeueAfterMs: requeue,
  };
}
