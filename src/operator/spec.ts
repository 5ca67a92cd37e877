import { messageOf } from '../core/errors.js';
import type { JobModel } from '../ports/job-model.js';
import type { KubeObject } from '../ports/kubernetes.js';
import type { AIJobSpec } from './reconcile.js';

/** Room enough for any task: whether one fits a node is the reconcile's question (Unschedulable), not the spec's. */
const NO_LIMIT = { gpus: 1_000_000, gpuMemoryMiB: Number.MAX_SAFE_INTEGER, cpu: 1_000_000, memoryMiB: 0 };

/**
 * An AIJob's spec checked by the job model (the same check as a submitted job): the AIJob's name
 * is the job's, `image` and `checkpoint` are the operator's own. A deadline is checked against the
 * AIJob's creation (a deadline passing mid-run is not a malformed spec). A refusal becomes the
 * AIJob's `InvalidSpec` condition (a status, not an error raised to a caller: no catalogue code).
 */
export function checkSpec(
  job: KubeObject,
  model: Pick<JobModel, 'validateSpec'>,
): AIJobSpec | { invalid: string } {
  const raw = job.spec ?? {};
  const { image, checkpoint, ...rest } = raw as { image?: unknown; checkpoint?: unknown };
  if (typeof image !== 'string' || image === '')
    return { invalid: 'spec.image: the worker image is required' };
  const created = Date.parse(job.metadata.creationTimestamp ?? '') || Date.now();
  try {
    const spec = model.validateSpec({ ...rest, name: job.metadata.name.slice(0, 63) }, NO_LIMIT, created - 1);
    const http = spec.tasks.find((t) => t.run.executor !== 'process' && t.run.executor !== 'noop');
    if (http)
      return {
        invalid: `task ${http.name}: executor ${http.run.executor} cannot run as a Pod (use process or noop)`,
      };
    const claim = (checkpoint as { claimName?: unknown } | undefined)?.claimName;
    return { ...spec, image, ...(typeof claim === 'string' ? { checkpoint: { claimName: claim } } : {}) };
  } catch (err) {
    return { invalid: messageOf(err) };
  }
}
