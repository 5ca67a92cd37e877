import type { Capacity, JobModel } from '../ports/job-model.js';
import type { KubeObject } from '../ports/kubernetes.js';

/**
 * GPU headroom per node: `nvidia.com/gpu` allocatable minus what the node's non-terminal Pods
 * request (and CPU and memory alike), with each GPU's memory read from a node label. The fit
 * itself is the job model's (best fit on GPU memory), so a task lands as the scheduler would place it.
 */

export interface Need {
  gpus: number;
  gpuMemoryMiB: number;
  cpu: number;
  memoryMiB: number;
}

export interface NodeRoom {
  name: string;
  /** What the node offers in all. */
  total: Need;
  free: Capacity;
}

const BINARY: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};
const DECIMAL: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};

/** A Kubernetes quantity ("500m", "16Gi", "2", "1e3") as a number; unreadable: 0. */
export function quantity(q: unknown): number {
  if (typeof q === 'number') return q;
  if (typeof q !== 'string') return 0;
  const m = /^([+-]?[0-9.]+(?:[eE][+-]?\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$/.exec(q.trim());
  if (!m) return 0;
  const v = Number(m[1]);
  const unit = m[2] ?? '';
  return v * (BINARY[unit] ?? DECIMAL[unit] ?? 1);
}

const MiB = 2 ** 20;

/** What a Pod asks for (sum over its containers; an extended resource counts by its limit). */
export function podNeed(pod: KubeObject, gpuResource: string): Need {
  const out: Need = { gpus: 0, gpuMemoryMiB: 0, cpu: 0, memoryMiB: 0 };
  for (const c of pod.spec?.containers ?? []) {
    const req = c.resources?.requests ?? {};
    const lim = c.resources?.limits ?? {};
    out.gpus += quantity(lim[gpuResource] ?? req[gpuResource]);
    out.cpu += quantity(req.cpu);
    out.memoryMiB += quantity(req.memory) / MiB;
  }
  return out;
}

const terminal = (p: KubeObject) => p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed';

function usable(n: KubeObject): boolean {
  if (n.spec?.unschedulable) return false;
  const ready = (n.status?.conditions ?? []).find((c: { type: string }) => c.type === 'Ready');
  return !ready || ready.status === 'True';
}

/** What a Pod holds on its node now: its need while bound and not terminal, else nothing. */
export function holding(p: KubeObject, gpuResource: string): { node: string; need: Need } | null {
  const node = p.spec?.nodeName;
  if (!node || terminal(p) || p.metadata.deletionTimestamp) return null;
  return { node, need: podNeed(p, gpuResource) };
}

/** Adds (sign 1) or takes out (sign -1) a Pod's hold from per-node usage. */
export function account(used: Map<string, Need>, h: { node: string; need: Need } | null, sign: 1 | -1): void {
  if (!h) return;
  const u = used.get(h.node) ?? { gpus: 0, gpuMemoryMiB: 0, cpu: 0, memoryMiB: 0 };
  used.set(h.node, {
    gpus: u.gpus + sign * h.need.gpus,
    gpuMemoryMiB: 0,
    cpu: u.cpu + sign * h.need.cpu,
    memoryMiB: u.memoryMiB + sign * h.need.memoryMiB,
  });
}

/** Every usable node's room now, less what its Pods (and Pods just created, not yet seen) hold. */
export function nodeRooms(
  nodes: readonly KubeObject[],
  pods: readonly KubeObject[],
  o: { gpuResource: string; gpuMemoryLabel: string },
): NodeRoom[] {
  const used = new Map<string, Need>();
  for (const p of pods) account(used, holding(p, o.gpuResource), 1);
  return roomsOf(nodes, used, o);
}

/** Rooms from per-node usage kept up to date elsewhere (the controller's, per Pod event). */
export function roomsOf(
  nodes: readonly KubeObject[],
  used: ReadonlyMap<string, Need>,
  o: { gpuResource: string; gpuMemoryLabel: string },
): NodeRoom[] {
  return nodes.filter(usable).map((n) => {
    const a = n.status?.allocatable ?? {};
    const total: Need = {
      gpus: Math.floor(quantity(a[o.gpuResource])),
      gpuMemoryMiB: quantity(n.metadata.labels?.[o.gpuMemoryLabel]),
      cpu: quantity(a.cpu),
      memoryMiB: quantity(a.memory) / MiB,
    };
    const u = used.get(n.metadata.name) ?? { gpus: 0, gpuMemoryMiB: 0, cpu: 0, memoryMiB: 0 };
    const freeGpus = Math.max(0, total.gpus - u.gpus);
    return {
      name: n.metadata.name,
      total,
      free: {
        // GPUs here are counted, not numbered (the device plugin picks which); memory from the label.
        gpus: Array.from({ length: freeGpus }, (_, index) => ({
          index,
          freeMiB: total.gpuMemoryMiB || Number.MAX_SAFE_INTEGER,
        })),
        cpu: total.cpu - u.cpu,
        memoryMiB: total.memoryMiB > 0 ? Math.max(1e-9, total.memoryMiB - u.memoryMiB) : 0,
        slots: Number.POSITIVE_INFINITY,
      },
    };
  });
}

/** The node a task goes to: among those it fits now, the one it leaves the fewest GPUs free on (best fit), then by name. */
export function pickNode(
  need: Need,
  rooms: readonly NodeRoom[],
  model: Pick<JobModel, 'fit'>,
): NodeRoom | null {
  let best: NodeRoom | null = null;
  for (const r of rooms) {
    if (model.fit(need, r.free) === null) continue;
    if (
      !best ||
      r.free.gpus.length < best.free.gpus.length ||
      (r.free.gpus.length === best.free.gpus.length && r.name < best.name)
    )
      best = r;
  }
  return best;
}

/** Takes a placed task's need out of a node's room (until the informer shows its Pod). */
export function take(room: NodeRoom, need: Need): void {
  room.free = {
    gpus: room.free.gpus.slice(need.gpus),
    cpu: room.free.cpu - need.cpu,
    memoryMiB: room.free.memoryMiB > 0 ? room.free.memoryMiB - need.memoryMiB : 0,
    slots: room.free.slots,
  };
}

/** Why no node could ever hold the task (by allocatable, not by what is free now), or null. */
export function neverFits(need: Need, nodes: readonly NodeRoom[]): string | null {
  if (nodes.length === 0) return 'no schedulable nodes';
  const most = (k: keyof Need) => Math.max(...nodes.map((n) => n.total[k]));
  const fits = (n: NodeRoom) =>
    n.total.gpus >= need.gpus &&
    (need.gpuMemoryMiB === 0 || n.total.gpuMemoryMiB === 0 || n.total.gpuMemoryMiB >= need.gpuMemoryMiB) &&
    n.total.cpu >= need.cpu &&
    (n.total.memoryMiB === 0 || n.total.memoryMiB >= need.memoryMiB);
  if (nodes.some(fits)) return null;
  if (need.gpus > most('gpus'))
    return `needs ${need.gpus} GPU${need.gpus === 1 ? '' : 's'}, largest node has ${most('gpus')}`;
  if (
    need.gpuMemoryMiB > 0 &&
    nodes.every((n) => n.total.gpuMemoryMiB > 0 && n.total.gpuMemoryMiB < need.gpuMemoryMiB)
  )
    return `needs ${need.gpuMemoryMiB} MiB per GPU, largest GPU has ${most('gpuMemoryMiB')} MiB`;
  if (need.cpu > most('cpu')) return `needs ${need.cpu} CPUs, largest node has ${most('cpu')}`;
  if (need.memoryMiB > most('memoryMiB'))
    return `needs ${need.memoryMiB} MiB of memory, largest node has ${Math.floor(most('memoryMiB'))} MiB`;
  return `needs ${need.gpus} GPUs with ${need.cpu} CPUs and ${need.memoryMiB} MiB on one node: no node has all of it`;
}
