import { FakeKubelets, gpuNode } from '../test/helpers/kube-apiserver/kubelet.js';
import { AIJOBS, aijob, cluster, startOperator } from '../test/operator/harness.js';
import { stats, tempDir } from './lib.js';

/**
 * The AIJob operator against the test API server (test/helpers/kube-apiserver; no real cluster
 * runs here): cold start over 1,000 existing AIJobs until every status is current, Pod phase →
 * AIJob status latency, and API requests per reconciled job (counted by the server). Kubelets are
 * simulated (Pods go Running and end when told). Client rate limit: qps 1000, burst 2000, 32 workers (at the
 * default 50 qps the ~3 writes per new job alone would take 60 s for 1,000 jobs).
 */
const JOBS = Number(process.env.KAPOK_BENCH_OPERATOR_JOBS ?? 1000);
const LATENCY_SAMPLES = 200;

export async function operator(): Promise<unknown> {
  const { dir, remove } = tempDir();
  const s = await cluster({ bookmarkMs: 1000, maxLog: 200_000 });
  try {
    for (let i = 0; i < 10; i++) s.create('', 'v1', 'nodes', null, gpuNode(`node-${i}`, 8, 81_920, 200));
    const kubelets = new FakeKubelets(s.api, () => 'hold');
    for (let i = 0; i < JOBS; i++)
      s.create(
        'kapok.io',
        'v1alpha1',
        'aijobs',
        'default',
        aijob(`job-${i}`, { tasks: [{ name: 'train', resources: { gpus: 0 }, run: { executor: 'noop' } }] }),
      );
    const current = () =>
      s.api.store
        .list(AIJOBS, 'default')
        .filter(
          (j) => j.status?.observedGeneration === j.metadata.generation && j.status?.phase === 'Running',
        ).length;
    const before = s.api.totalRequests();
    const t0 = performance.now();
    const op = await startOperator(s, dir, {
      qps: 1000,
      burst: 2000,
      workers: 32,
      leaderElection: { enabled: false },
    });
    while (current() < JOBS) await new Promise((ok) => setTimeout(ok, 10));
    const coldStartS = (performance.now() - t0) / 1000;
    const requests = s.api.totalRequests() - before;
    const informerRequests = s.api.totalRequests((k) => k.startsWith('LIST ') || k.startsWith('WATCH '));
    const byVerb = Object.fromEntries(s.api.requests);

    // Pod phase change → AIJob status update, one at a time.
    const lat: number[] = [];
    for (let i = 0; i < LATENCY_SAMPLES; i++) {
      const name = `job-${i}`;
      const seen = new Promise<number>((ok) => {
        const w = {
          res: AIJOBS,
          namespace: 'default',
          matches: (o: { metadata: { name: string } }) => o.metadata.name === name,
          send: (_t: string, o: { status?: { phase?: string } }) => {
            if (o.status?.phase !== 'Succeeded') return;
            s.api.store.watchers.delete(w);
            ok(performance.now());
          },
        };
        s.api.store.watchers.add(w);
      });
      const start = performance.now();
      kubelets.release((k) => k === `default/${name}-train-1`);
      lat.push((await seen) - start);
    }
    await op.stop();
    const l = stats(lat);
    const p99 = [...lat].sort((a, b) => a - b)[Math.floor(0.99 * lat.length)] as number;
    return {
      note: 'against the test API server (simulated cluster, in-process); the box is shared and busy',
      jobs: JOBS,
      coldStartS: Number(coldStartS.toFixed(2)),
      apiRequests: {
        total: requests,
        perJob: Number(((requests - informerRequests) / JOBS).toFixed(2)),
        informer: informerRequests,
        byVerb,
      },
      podPhaseToStatusMs: { ...l, p99: Math.round(p99 * 10) / 10 },
      met: { 'cold start ≤ 10 s': coldStartS <= 10, 'phase → status p99 ≤ 200 ms': p99 <= 200 },
    };
  } finally {
    await s.close();
    remove();
  }
}
