import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { operatorSchema } from '../../src/operator/config.js';
import { neverFits, nodeRooms, quantity } from '../../src/operator/nodes.js';
import { podName } from '../../src/operator/pods.js';
import type { Obj, RunningApiServer } from '../helpers/kube-apiserver/index.js';
import { type Decision, FakeKubelets, gpuNode } from '../helpers/kube-apiserver/kubelet.js';
import { tmpDir } from '../helpers/tmp.js';
import { AIJOBS, aijob, cluster, job, PODS, type RunningOperator, startOperator, until } from './harness.js';

type Task = {
  name: string;
  state: string;
  attempts: number;
  message?: string;
  exitCode?: number;
  retryAt?: string;
};
const taskOf = (j: Obj | undefined, name: string): Task | undefined =>
  j?.status?.tasks?.find((t: Task) => t.name === name);
const condition = (j: Obj | undefined, type: string) =>
  j?.status?.conditions?.find((c: { type: string }) => c.type === type);

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

describe('operator: GPU fit across three nodes', () => {
  let s: RunningApiServer;
  let op: RunningOperator;
  let kubelets: FakeKubelets;
  before(async () => {
    s = await cluster();
    s.create('', 'v1', 'nodes', null, gpuNode('small', 1, 81_920));
    s.create('', 'v1', 'nodes', null, gpuNode('narrow', 2, 24_576));
    s.create('', 'v1', 'nodes', null, gpuNode('wide', 4, 81_920));
    kubelets = new FakeKubelets(s.api, () => 'hold');
    op = await startOperator(s, tmpDir('kapok-op-fit-'));
  });
  after(async () => {
    await op?.stop();
    await s?.close();
  });

  it('places by GPU headroom (allocatable minus running Pods) and GPU memory, and says why a task cannot run', async () => {
    // Another workload holds 3 of wide's 4 GPUs: a 2-GPU, 40 GiB task fits nowhere now.
    s.create('', 'v1', 'pods', 'default', {
      metadata: { name: 'other' },
      spec: {
        nodeName: 'wide',
        containers: [{ name: 'x', image: 'x', resources: { limits: { 'nvidia.com/gpu': '3' } } }],
      },
    });
    s.create(
      'kapok.io',
      'v1alpha1',
      'aijobs',
      'default',
      aijob('big-mem', {
        tasks: [{ name: 'train', resources: { gpus: 2, gpuMemoryMiB: 40_000 }, run: { executor: 'noop' } }],
      }),
    );
    s.create(
      'kapok.io',
      'v1alpha1',
      'aijobs',
      'default',
      aijob('one-gpu', {
        tasks: [{ name: 'infer', resources: { gpus: 1 }, run: { executor: 'noop' } }],
      }),
    );
    s.create(
      'kapok.io',
      'v1alpha1',
      'aijobs',
      'default',
      aijob('too-big', {
        tasks: [{ name: 'train', resources: { gpus: 8 }, run: { executor: 'noop' } }],
      }),
    );
    const waiting = await until(
      'big-mem waiting',
      () => condition(job(s, 'big-mem'), 'Scheduled')?.reason === 'WaitingForCapacity' && job(s, 'big-mem'),
    );
    assert.equal(waiting.status.phase, 'Pending');
    const never = await until('too-big unschedulable', () => condition(job(s, 'too-big'), 'Scheduled'));
    assert.equal(never.reason, 'Unschedulable');
    assert.equal(never.message, 'task train: needs 8 GPUs, largest node has 4');
    // Best fit: the 1-GPU task takes the node it leaves no GPU idle on.
    await until('one-gpu placed', () => kubelets.created.includes('default/one-gpu-infer-1'));
    assert.equal(s.api.store.get(PODS, 'default', 'one-gpu-infer-1').spec.nodeName, 'small');
    // The other workload ends: wide has 4 free GPUs of 80 GiB (narrow's 24 GiB GPUs are too small).
    const other = s.api.store.get(PODS, 'default', 'other');
    s.api.store.update(PODS, 'default', 'other', { ...other, status: { phase: 'Succeeded' } }, 'status');
    await until('big-mem placed', () => kubelets.created.includes('default/big-mem-train-1'));
    assert.equal(s.api.store.get(PODS, 'default', 'big-mem-train-1').spec.nodeName, 'wide');
    assert.equal(
      condition(
        await until(
          'placed',
          () => condition(job(s, 'big-mem'), 'Scheduled')?.status === 'True' && job(s, 'big-mem'),
        ),
        'Scheduled',
      ).reason,
      'Placed',
    );
  });
});

describe('operator: retries, a deleted Pod, a restart, dropped watches', () => {
  let s: RunningApiServer;
  let op: RunningOperator;
  let kubelets: FakeKubelets;
  const createdAt = new Map<string, number>();
  /** Per Pod name: what the kubelet does (default exit 0). */
  const script = new Map<string, Decision>();
  before(async () => {
    s = await cluster();
    for (const n of ['n1', 'n2']) s.create('', 'v1', 'nodes', null, gpuNode(n, 4));
    kubelets = new FakeKubelets(s.api, (pod) => {
      createdAt.set(pod.metadata.name, Date.now());
      return script.get(pod.metadata.name) ?? { exitCode: 0 };
    });
    op = await startOperator(s, tmpDir('kapok-op-retry-'));
  });
  after(async () => {
    await op?.stop();
    await s?.close();
  });

  it('retries a Pod that exits 1 after the backoff, and fails a task out of attempts (skipping what needs it)', async () => {
    script.set('flaky-train-1', { exitCode: 1 });
    script.set('doomed-a-1', { exitCode: 3 });
    s.create(
      'kapok.io',
      'v1alpha1',
      'aijobs',
      'default',
      aijob('flaky', {
        tasks: [
          {
            name: 'train',
            retry: { maxAttempts: 3, backoff: { baseS: 0.3, factor: 2, maxS: 5, jitter: 0 } },
            run: { executor: 'noop' },
          },
        ],
      }),
    );
    s.create(
      'kapok.io',
      'v1alpha1',
      'aijobs',
      'default',
      aijob('doomed', {
        tasks: [
          { name: 'a', run: { executor: 'noop' } },
          { name: 'b', needs: ['a'], run: { executor: 'noop' } },
        ],
      }),
    );
    const retrying = await until(
      'retrying',
      () => taskOf(job(s, 'flaky'), 'train')?.state === 'retrying' && taskOf(job(s, 'flaky'), 'train'),
    );
    assert.equal(retrying.exitCode, 1);
    assert.match(retrying.message ?? '', /attempt 1 exited with code 1 \(Error\); retry in 0\.3 s/);
    const j = await until(
      'flaky Succeeded',
      () => job(s, 'flaky')?.status?.phase === 'Succeeded' && job(s, 'flaky'),
    );
    assert.equal(taskOf(j, 'train')?.attempts, 2);
    // The second attempt started no earlier than the backoff allowed.
    assert.ok((createdAt.get('flaky-train-2') ?? 0) >= Date.parse(retrying.retryAt as string));
    const d = await until(
      'doomed Failed',
      () => job(s, 'doomed')?.status?.phase === 'Failed' && job(s, 'doomed'),
    );
    assert.equal(taskOf(d, 'a')?.state, 'failed');
    assert.match(taskOf(d, 'a')?.message ?? '', /exited with code 3.*no attempts left/);
    assert.equal(taskOf(d, 'b')?.state, 'skipped');
    assert.equal(condition(d, 'Failed')?.reason, 'TaskFailed');
    assert.ok(!kubelets.created.includes('default/doomed-b-1'));
  });

  it('notices a deleted Pod and retries its task', async () => {
    script.set('victim-work-1', 'hold');
    s.create(
      'kapok.io',
      'v1alpha1',
      'aijobs',
      'default',
      aijob('victim', {
        tasks: [
          {
            name: 'work',
            retry: { maxAttempts: 2, backoff: { baseS: 0, jitter: 0 } },
            run: { executor: 'noop' },
          },
        ],
      }),
    );
    await until(
      'running',
      () =>
        taskOf(job(s, 'victim'), 'work')?.state === 'running' && kubelets.holding('default/victim-work-1'),
    );
    s.api.store.delete(PODS, 'default', 'victim-work-1');
    const j = await until(
      'victim Succeeded',
      () => job(s, 'victim')?.status?.phase === 'Succeeded' && job(s, 'victim'),
    );
    assert.equal(taskOf(j, 'work')?.attempts, 2);
    assert.ok(kubelets.created.includes('default/victim-work-2'));
  });

  it('restarted mid-job, adopts its Pods (even with its status write lost) and creates no duplicate', async () => {
    script.set('adopt-a-1', 'hold');
    script.set('adopt-b-1', 'hold');
    s.create(
      'kapok.io',
      'v1alpha1',
      'aijobs',
      'default',
      aijob('adopt', {
        tasks: [
          { name: 'a', run: { executor: 'noop' } },
          { name: 'b', run: { executor: 'noop' } },
          { name: 'c', needs: ['a', 'b'], run: { executor: 'noop' } },
        ],
      }),
    );
    await until(
      'both running',
      () => job(s, 'adopt')?.status?.tasks?.filter((t: Task) => t.state === 'running').length === 2,
    );
    await op.stop();
    // As if the operator died between creating the Pods and writing the status.
    const cur = job(s, 'adopt') as Obj;
    s.api.store.update(AIJOBS, 'default', 'adopt', { ...cur, status: {} }, 'status');
    const podsBefore = kubelets.created.filter((k) => k.startsWith('default/adopt-'));
    op = await startOperator(s, tmpDir('kapok-op-retry2-'));
    const adopted = await until(
      'adopted',
      () =>
        job(s, 'adopt')?.status?.tasks?.filter((t: Task) => t.state === 'running').length === 2 &&
        job(s, 'adopt'),
    );
    assert.deepEqual(
      adopted.status.tasks.map((t: Task) => [t.name, t.state, t.attempts]),
      [
        ['a', 'running', 1],
        ['b', 'running', 1],
        ['c', 'queued', 0],
      ],
    );
    assert.deepEqual(
      kubelets.created.filter((k) => k.startsWith('default/adopt-')),
      podsBefore,
    );
    kubelets.release((k) => k.startsWith('default/adopt-'));
    await until('adopt Succeeded', () => job(s, 'adopt')?.status?.phase === 'Succeeded');
    assert.deepEqual(
      kubelets.created.filter((k) => k.startsWith('default/adopt-')),
      ['default/adopt-a-1', 'default/adopt-b-1', 'default/adopt-c-1'],
    );
  });

  it('loses no transition through 10 dropped watches and one compaction (410 Gone → relist)', async () => {
    const names = Array.from({ length: 11 }, (_, i) => `s${i}`);
    for (const n of names) script.set(`chain-${n}-1`, 'hold');
    s.create(
      'kapok.io',
      'v1alpha1',
      'aijobs',
      'default',
      aijob('chain', {
        tasks: names.map((name, i) => ({ name, needs: i ? [`s${i - 1}`] : [], run: { executor: 'noop' } })),
      }),
    );
    const listsBefore = s.api.totalRequests((k) => k.startsWith('LIST '));
    for (const [i, n] of names.entries()) {
      await until(`${n} running`, () => kubelets.holding(`default/chain-${n}-1`));
      if (i < 10) {
        await until('watches open again', () => s.api.openWatches() >= 3);
        assert.ok(s.api.dropWatches() >= 3);
      }
      if (i === 5) s.api.store.compact();
      // The transition happens while no watch is open.
      assert.equal(
        kubelets.release((k) => k === `default/chain-${n}-1`),
        1,
      );
    }
    const j = await until(
      'chain Succeeded',
      () => job(s, 'chain')?.status?.phase === 'Succeeded' && job(s, 'chain'),
    );
    assert.equal(j.status.tasksDone, '11/11');
    assert.ok(j.status.tasks.every((t: Task) => t.state === 'succeeded' && t.attempts === 1));
    assert.equal(kubelets.created.filter((k) => k.startsWith('default/chain-')).length, 11);
    assert.ok(
      s.api.totalRequests((k) => k.startsWith('LIST ')) > listsBefore,
      'the compaction made the informers relist',
    );
  });
});

describe('operator: deletion and leader election', () => {
  let s: RunningApiServer;
  let kubelets: FakeKubelets;
  const ops: RunningOperator[] = [];
  before(async () => {
    s = await cluster();
    s.create('', 'v1', 'nodes', null, gpuNode('n1', 8));
    kubelets = new FakeKubelets(s.api, (pod) =>
      pod.metadata.name.startsWith('held-') ? 'hold' : { exitCode: 0 },
    );
  });
  after(async () => {
    for (const o of ops) await o.stop();
    await s?.close();
  });

  it('with the finalizer, deletes the Pods before the AIJob goes', async () => {
    const dir = tmpDir('kapok-op-fin-');
    ops.push(await startOperator(s, dir));
    s.create(
      'kapok.io',
      'v1alpha1',
      'aijobs',
      'default',
      aijob('held', {
        tasks: [
          { name: 'a', run: { executor: 'noop' } },
          { name: 'b', run: { executor: 'noop' } },
        ],
      }),
    );
    await until(
      'two Pods running',
      () => kubelets.holding('default/held-a-1') && kubelets.holding('default/held-b-1'),
    );
    const order: string[] = [];
    s.api.store.watchers.add({
      res: AIJOBS,
      namespace: null,
      matches: () => true,
      send: (t, o) => t === 'DELETED' && order.push(`aijob ${o.metadata.name}`),
    });
    s.api.store.watchers.add({
      res: PODS,
      namespace: null,
      matches: () => true,
      send: (t, o) => t === 'DELETED' && order.push(`pod ${o.metadata.name}`),
    });
    const marked = s.api.store.delete(AIJOBS, 'default', 'held');
    assert.ok(marked.metadata.deletionTimestamp, 'the finalizer holds the AIJob');
    await until('AIJob gone', () => job(s, 'held') === undefined);
    assert.deepEqual(order.slice().sort(), ['aijob held', 'pod held-a-1', 'pod held-b-1']);
    assert.equal(order.at(-1), 'aijob held');
    assert.equal(
      s.api.store.list(PODS, 'default').filter((p) => p.metadata.name.startsWith('held-')).length,
      0,
    );
    await ops.pop()?.stop();
  });

  it('of two replicas, one leads (the Lease holder) and acts; the other takes over when it stops', async () => {
    const le = (identity: string) => ({
      leaderElection: {
        enabled: true,
        namespace: 'default',
        name: 'kapok-operator',
        leaseDurationS: 2,
        renewMs: 100,
        identity,
      },
    });
    const a = await startOperator(s, tmpDir('kapok-op-a-'), le('replica-a'));
    const b = await startOperator(s, tmpDir('kapok-op-b-'), le('replica-b'));
    ops.push(a, b);
    const roles = async () => {
      const out: string[] = [];
      for (const o of [a, b]) {
        const r = await o.health.readiness();
        out.push(
          String((r.components.find((c) => c.name === 'operator')?.detail as { role?: string })?.role),
        );
      }
      return out;
    };
    const lease = (): Obj => {
      try {
        return s.api.store.get('coordination.k8s.io/v1/leases', 'default', 'kapok-operator');
      } catch {
        return { metadata: { name: '' } }; // not created yet
      }
    };
    const holder = await until('a holder', () => lease().spec?.holderIdentity);
    // The Lease is written before the winner's create returns: wait for the winner to know it.
    let r = await roles();
    for (let i = 0; i < 200 && !r.includes('leader'); i++) {
      await new Promise((ok) => setTimeout(ok, 20));
      r = await roles();
    }
    assert.deepEqual(r.slice().sort(), ['leader', 'standby']);
    const leader = holder === 'replica-a' ? a : b;
    const standby = leader === a ? b : a;
    assert.equal(r[leader === a ? 0 : 1], 'leader');
    s.create(
      'kapok.io',
      'v1alpha1',
      'aijobs',
      'default',
      aijob('led', { tasks: [{ name: 't', run: { executor: 'noop' } }] }),
    );
    await until('led Succeeded', () => job(s, 'led')?.status?.phase === 'Succeeded');
    assert.equal(kubelets.created.filter((k) => k.startsWith('default/led-')).length, 1);
    await leader.stop();
    ops.splice(ops.indexOf(leader), 1);
    const next = await until(
      'the standby holds the Lease',
      () => lease().spec?.holderIdentity !== holder && lease().spec?.holderIdentity,
    );
    assert.equal(next, standby === a ? 'replica-a' : 'replica-b');
    assert.equal(lease().spec.leaseTransitions, 1);
    s.create(
      'kapok.io',
      'v1alpha1',
      'aijobs',
      'default',
      aijob('after', { tasks: [{ name: 't', run: { executor: 'noop' } }] }),
    );
    await until('after Succeeded', () => job(s, 'after')?.status?.phase === 'Succeeded');
  });
});

describe('operator: pure parts', () => {
  it('reads Kubernetes quantities', () => {
    assert.equal(quantity('500m'), 0.5);
    assert.equal(quantity('16Gi'), 16 * 2 ** 30);
    assert.equal(quantity('2'), 2);
    assert.equal(quantity('1e3'), 1000);
    assert.equal(quantity('12k'), 12_000);
    assert.equal(quantity('banana'), 0);
  });

  it('names Pods as DNS labels of at most 63 characters, distinct per task and attempt', () => {
    assert.equal(podName('train', 'prep', 1), 'train-prep-1');
    const a = podName('j', 'Prep_A', 2);
    const b = podName('j', 'prep-a', 2);
    assert.notEqual(a, b);
    assert.match(a, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    const long = podName('x'.repeat(60), 'y'.repeat(60), 100);
    assert.ok(long.length <= 63 && long.endsWith('-100'), long);
    assert.notEqual(long, podName('x'.repeat(60), 'y'.repeat(59), 100));
  });

  it('says why a task can never fit', () => {
    const rooms = nodeRooms([gpuNode('a', 1, 24_576, 8), gpuNode('b', 2, 24_576, 8)] as never, [], {
      gpuResource: 'nvidia.com/gpu',
      gpuMemoryLabel: 'nvidia.com/gpu.memory',
    });
    assert.equal(
      neverFits({ gpus: 4, gpuMemoryMiB: 0, cpu: 1, memoryMiB: 0 }, rooms),
      'needs 4 GPUs, largest node has 2',
    );
    assert.equal(
      neverFits({ gpus: 1, gpuMemoryMiB: 40_000, cpu: 1, memoryMiB: 0 }, rooms),
      'needs 40000 MiB per GPU, largest GPU has 24576 MiB',
    );
    assert.equal(
      neverFits({ gpus: 1, gpuMemoryMiB: 0, cpu: 16, memoryMiB: 0 }, rooms),
      'needs 16 CPUs, largest node has 8',
    );
    assert.equal(neverFits({ gpus: 2, gpuMemoryMiB: 0, cpu: 1, memoryMiB: 0 }, rooms), null);
    assert.equal(neverFits({ gpus: 0, gpuMemoryMiB: 0, cpu: 1, memoryMiB: 0 }, []), 'no schedulable nodes');
  });

  it('refuses a renewal period that is not below the Lease duration', () => {
    assert.throws(
      () => operatorSchema.parse({ leaderElection: { leaseDurationS: 1, renewMs: 1000 } }),
      /leaseDurationS/,
    );
  });
});

describe('operator: an unreachable API server', () => {
  it('fails the start with KAPOK_OPERATOR_API naming what to check, instead of hanging', async () => {
    const s = await cluster();
    const dir = tmpDir('kapok-op-down-');
    s.kubeconfig(dir);
    await s.close();
    await assert.rejects(
      startOperator(s, dir, { requestTimeoutMs: 200 }),
      (e: { code?: string; message: string }) =>
        e.code === 'KAPOK_OPERATOR_API' && /operator\.kubeconfig/.test(e.message),
    );
  });
});
