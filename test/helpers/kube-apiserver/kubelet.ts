import type { KubeApiServer } from './server.js';
import type { Obj } from './store.js';

/**
 * A stand-in for the kubelets of the test cluster: a Pod bound to a node (spec.nodeName) goes
 * Running, then ends as `decide` says (an exit code), or stays Running while `decide` answers
 * 'hold' until release() is called. It writes Pod status through the store, as a kubelet writes
 * /status. Containers do not run: exit codes are what the test decides.
 */
export type Decision = { exitCode: number } | 'hold';

export class FakeKubelets {
  private readonly held = new Map<string, Obj>();
  /** Every Pod seen created, in order (namespace/name). */
  readonly created: string[] = [];

  constructor(
    private readonly api: KubeApiServer,
    private readonly decide: (pod: Obj) => Decision,
  ) {
    api.store.watchers.add({
      res: '/v1/pods',
      namespace: null,
      matches: () => true,
      send: (type, pod) => {
        if (type !== 'ADDED' || pod.status?.phase !== 'Pending' || !pod.spec?.nodeName) return;
        this.created.push(`${pod.metadata.namespace}/${pod.metadata.name}`);
        setImmediate(() => this.run(pod));
      },
    });
  }

  private set(pod: Obj, status: Obj): boolean {
    try {
      const cur = this.api.store.get('/v1/pods', pod.metadata.namespace, pod.metadata.name);
      this.api.store.update(
        '/v1/pods',
        pod.metadata.namespace,
        pod.metadata.name,
        { ...cur, status },
        'status',
      );
      return true;
    } catch {
      return false; // deleted meanwhile
    }
  }

  private run(pod: Obj): void {
    if (!this.set(pod, { phase: 'Running' })) return;
    const d = this.decide(pod);
    if (d === 'hold') this.held.set(`${pod.metadata.namespace}/${pod.metadata.name}`, pod);
    else setImmediate(() => this.finish(pod, d.exitCode));
  }

  finish(pod: Obj, exitCode: number): boolean {
    return this.set(pod, {
      phase: exitCode === 0 ? 'Succeeded' : 'Failed',
      containerStatuses: [
        { name: 'task', state: { terminated: { exitCode, reason: exitCode === 0 ? 'Completed' : 'Error' } } },
      ],
    });
  }

  /** Whether the Pod (namespace/name) is running, held by the test. */
  holding(key: string): boolean {
    return this.held.has(key);
  }

  /** Ends held Pods whose key matches. */
  release(match: (key: string) => boolean, exitCode = 0): number {
    let n = 0;
    for (const [k, pod] of this.held)
      if (match(k)) {
        this.held.delete(k);
        if (this.finish(pod, exitCode)) n++;
      }
    return n;
  }
}

/** A node as the test cluster has it: GPUs allocatable and each GPU's memory in a label. */
export function gpuNode(name: string, gpus: number, gpuMemoryMiB = 81_920, cpu = 64): Obj {
  return {
    metadata: { name, labels: { 'nvidia.com/gpu.memory': String(gpuMemoryMiB) } },
    status: {
      allocatable: { cpu: String(cpu), memory: '512Gi', 'nvidia.com/gpu': String(gpus), pods: '110' },
      conditions: [{ type: 'Ready', status: 'True' }],
    },
  };
}
