import { createHash } from 'node:crypto';
import type { FailureClass, ModelJobSpec, ModelTaskSpec } from '../ports/job-model.js';
import type { KubeObject } from '../ports/kubernetes.js';
import {
  AIJOBS,
  ANNOTATION_ATTEMPT,
  ANNOTATION_TASK,
  LABEL_JOB,
  LABEL_MANAGED,
  MANAGER,
} from './resources.js';

/**
 * Worker Pods: one per task attempt, named from the AIJob, task and attempt so that an operator
 * restarted mid-job (or two that raced) creating the same attempt again gets 409 AlreadyExists and
 * adopts the Pod instead of running the task twice.
 */

const short = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 6);

/** `<job>-<task>-<attempt>`, a DNS label of at most 63 characters (hashed where it had to change). */
export function podName(job: string, task: string, attempt: number): string {
  const slug = task.toLowerCase().replace(/[^a-z0-9-]/g, '-');
  const base = `${job}-${slug}${slug === task ? '' : `-${short(task)}`}`;
  const tail = `-${attempt}`;
  if (base.length + tail.length <= 63) return base + tail;
  return `${base.slice(0, 63 - tail.length - 7).replace(/-+$/, '')}-${short(base)}${tail}`;
}

export interface PodSettings {
  gpuResource: string;
  checkpointMountPath: string;
}

/** The worker Pod of one attempt, bound to the node picked (the operator is the scheduler here). */
export function workerPod(
  job: KubeObject,
  spec: ModelJobSpec & { image: string; checkpoint?: { claimName: string } },
  task: ModelTaskSpec,
  attempt: number,
  node: string,
  s: PodSettings,
): KubeObject {
  const r = task.resources;
  const run = task.run;
  const command = run.executor === 'process' && run.command ? run.command : ['sh', '-c', 'exit 0'];
  const env: Record<string, string> = {
    ...(run.env ?? {}),
    KAPOK_JOB: job.metadata.name,
    KAPOK_JOB_UID: job.metadata.uid ?? '',
    KAPOK_TASK: task.name,
    KAPOK_ATTEMPT: String(attempt),
    KAPOK_TASK_NEEDS: JSON.stringify(task.needs),
    KAPOK_DAG: JSON.stringify(spec.tasks.map((t) => ({ name: t.name, needs: t.needs }))),
    KAPOK_CHECKPOINT_DIR: s.checkpointMountPath,
    ...(task.checkpoint ? { KAPOK_CHECKPOINT_EVERY_S: String(task.checkpoint.everyS) } : {}),
  };
  const claim = spec.checkpoint?.claimName;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: podName(job.metadata.name, task.name, attempt),
      namespace: job.metadata.namespace as string,
      labels: { [LABEL_JOB]: job.metadata.uid as string, [LABEL_MANAGED]: MANAGER },
      annotations: {
        [ANNOTATION_TASK]: task.name,
        [ANNOTATION_ATTEMPT]: String(attempt),
        'kapok.io/aijob-name': job.metadata.name,
      },
      ownerReferences: [
        {
          apiVersion: `${AIJOBS.group}/${AIJOBS.version}`,
          kind: AIJOBS.kind,
          name: job.metadata.name,
          uid: job.metadata.uid as string,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      nodeName: node,
      restartPolicy: 'Never',
      ...(task.timeoutS ? { activeDeadlineSeconds: Math.ceil(task.timeoutS) } : {}),
      ...(r.gpus > 0
        ? { tolerations: [{ key: s.gpuResource, operator: 'Exists', effect: 'NoSchedule' }] }
        : {}),
      containers: [
        {
          name: 'task',
          image: spec.image,
          command,
          ...(run.cwd ? { workingDir: run.cwd } : {}),
          env: Object.entries(env).map(([name, value]) => ({ name, value })),
          resources: {
            requests: { cpu: String(r.cpu), ...(r.memoryMiB > 0 ? { memory: `${r.memoryMiB}Mi` } : {}) },
            limits: {
              ...(r.gpus > 0 ? { [s.gpuResource]: String(r.gpus) } : {}),
              ...(r.memoryMiB > 0 ? { memory: `${r.memoryMiB}Mi` } : {}),
            },
          },
          volumeMounts: [
            {
              name: 'checkpoint',
              mountPath: s.checkpointMountPath,
              ...(claim ? { subPath: `${job.metadata.name}/${task.name}` } : {}),
            },
          ],
        },
      ],
      volumes: [
        claim
          ? { name: 'checkpoint', persistentVolumeClaim: { claimName: claim } }
          : { name: 'checkpoint', emptyDir: {} },
      ],
    },
  };
}

export type PodOutcome =
  | { done: false; running: boolean }
  | { done: true; ok: true }
  | { done: true; ok: false; failure: { class: FailureClass; exitCode?: number }; message: string };

/** A Pod's phase and exit code as a task attempt's outcome. */
export function outcome(pod: KubeObject): PodOutcome {
  const st = pod.status ?? {};
  if (st.phase === 'Succeeded') return { done: true, ok: true };
  if (st.phase !== 'Failed') return { done: false, running: st.phase === 'Running' };
  const term = (st.containerStatuses ?? [])[0]?.state?.terminated;
  if (st.reason === 'DeadlineExceeded')
    return {
      done: true,
      ok: false,
      failure: { class: 'timeout' },
      message: 'timed out (activeDeadlineSeconds)',
    };
  if (term && typeof term.exitCode === 'number')
    return {
      done: true,
      ok: false,
      failure: { class: 'exit', exitCode: term.exitCode },
      message: `exited with code ${term.exitCode}${term.reason ? ` (${term.reason})` : ''}`,
    };
  return {
    done: true,
    ok: false,
    failure: { class: 'lost' },
    message: `Pod failed: ${st.reason ?? 'no exit code'}`,
  };
}

export const taskOf = (pod: KubeObject) => pod.metadata.annotations?.[ANNOTATION_TASK] ?? '';
export const attemptOf = (pod: KubeObject) => Number(pod.metadata.annotations?.[ANNOTATION_ATTEMPT] ?? 0);
