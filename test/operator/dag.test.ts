import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RunningApiServer } from '../helpers/kube-apiserver/index.js';
import { FakeKubelets, gpuNode } from '../helpers/kube-apiserver/kubelet.js';
import { tmpDir } from '../helpers/tmp.js';
import { AIJOBS, aijob, cluster, job, PODS, type RunningOperator, startOperator, until } from './harness.js';

/** Against the test API server (test/helpers/kube-apiserver), not a real cluster: see docs/operator.md. */
describe('operator: a 3-task DAG', () => {
  let s: RunningApiServer;
  let op: RunningOperator;
  let kubelets: FakeKubelets;
  before(async () => {
    s = await cluster();
    for (const n of ['gpu-a', 'gpu-b', 'gpu-c']) s.create('', 'v1', 'nodes', null, gpuNode(n, 2));
    kubelets = new FakeKubelets(s.api, () => ({ exitCode: 0 }));
    op = await startOperator(s, tmpDir('kapok-op-dag-'));
  });
  after(async () => {
    await op?.stop();
    await s?.close();
  });

  it('runs prepare → train → evaluate to Succeeded, creating Pods in dependency order', async () => {
    s.create(
      'kapok.io',
      'v1alpha1',
      'aijobs',
      'default',
      aijob('pipeline', {
        tasks: [
          {
            name: 'evaluate',
            needs: ['train'],
            run: { executor: 'process', command: ['python', 'eval.py'] },
          },
          { name: 'prepare', run: { executor: 'process', command: ['python', 'prep.py'] } },
          {
            name: 'train',
            needs: ['prepare'],
            resources: { gpus: 2 },
            run: { executor: 'process', command: ['python', 'train.py'] },
          },
        ],
      }),
    );
    const done = await until(
      'Succeeded',
      () => job(s, 'pipeline')?.status?.phase === 'Succeeded' && job(s, 'pipeline'),
    );
    assert.deepEqual(kubelets.created, [
      'default/pipeline-prepare-1',
      'default/pipeline-train-1',
      'default/pipeline-evaluate-1',
    ]);
    assert.equal(done.status.tasksDone, '3/3');
    assert.equal(done.status.observedGeneration, 1);
    assert.deepEqual(
      done.status.tasks.map((t: { name: string; state: string; attempts: number }) => [
        t.name,
        t.state,
        t.attempts,
      ]),
      [
        ['evaluate', 'succeeded', 1],
        ['prepare', 'succeeded', 1],
        ['train', 'succeeded', 1],
      ],
    );
    assert.equal(
      done.status.conditions.find((c: { type: string }) => c.type === 'Succeeded')?.status,
      'True',
    );
    assert.deepEqual(done.metadata.finalizers, ['kapok.io/worker-pods']);
    const train = s.api.store.get(PODS, 'default', 'pipeline-train-1');
    assert.equal(train.spec.containers[0].resources.limits['nvidia.com/gpu'], '2');
    assert.deepEqual(train.spec.containers[0].command, ['python', 'train.py']);
    const env = Object.fromEntries(
      train.spec.containers[0].env.map((e: { name: string; value: string }) => [e.name, e.value]),
    );
    assert.equal(env.KAPOK_TASK, 'train');
    assert.deepEqual(JSON.parse(env.KAPOK_TASK_NEEDS), ['prepare']);
    assert.equal(JSON.parse(env.KAPOK_DAG).length, 3);
    assert.equal(env.KAPOK_CHECKPOINT_DIR, '/checkpoint');
    assert.equal(train.metadata.ownerReferences[0].uid, done.metadata.uid);
    assert.equal(train.metadata.ownerReferences[0].controller, true);
  });

  it('reports a malformed task graph as InvalidSpec and creates no Pod', async () => {
    const before = kubelets.created.length;
    s.create(
      'kapok.io',
      'v1alpha1',
      'aijobs',
      'default',
      aijob('cyclic', {
        tasks: [
          { name: 'a', needs: ['b'], run: { executor: 'noop' } },
          { name: 'b', needs: ['a'], run: { executor: 'noop' } },
        ],
      }),
    );
    const j = await until('Failed', () => job(s, 'cyclic')?.status?.phase === 'Failed' && job(s, 'cyclic'));
    const c = j.status.conditions.find((x: { type: string }) => x.type === 'Failed');
    assert.equal(c.reason, 'InvalidSpec');
    assert.match(c.message, /cycle a → b → a/);
    assert.equal(kubelets.created.length, before);
  });

  it('ignores spec changes written to /status (the status subresource keeps the spec)', async () => {
    const cur = job(s, 'pipeline');
    s.api.store.update(
      AIJOBS,
      'default',
      'pipeline',
      { ...cur, spec: { ...cur?.spec, image: 'evil:latest' }, status: cur?.status },
      'status',
    );
    assert.equal(job(s, 'pipeline')?.spec.image, 'busybox:1.36');
    assert.equal(job(s, 'pipeline')?.metadata.generation, 1);
  });
});
