import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { Obj, RunningApiServer } from '../helpers/kube-apiserver/index.js';
import { tmpDir, tmpFile } from '../helpers/tmp.js';
import { AIJOBS, cluster, PODS, root, until } from './harness.js';

/**
 * The test API server's fidelity, checked with a client no one here wrote: the installed kubectl
 * (1.32) applies (client- and server-side), reads, patches /status, watches and deletes AIJobs
 * against it. Then the semantics the operator relies on, over raw HTTP.
 */
const run = promisify(execFile);

async function hasKubectl(): Promise<boolean> {
  try {
    await run('kubectl', ['version', '--client']);
    return true;
  } catch {
    return false;
  }
}

/** GET as a stream of watch lines, until `stop` says enough or ms pass. */
function watchLines(
  url: string,
  stop: (lines: Record<string, unknown>[]) => boolean,
  ms = 10_000,
): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    const lines: Record<string, unknown>[] = [];
    let buf = '';
    const req = request(url, (res) => {
      res.on('data', (c: Buffer) => {
        buf += c.toString();
        let i = buf.indexOf('\n');
        while (i >= 0) {
          lines.push(JSON.parse(buf.slice(0, i)));
          buf = buf.slice(i + 1);
          i = buf.indexOf('\n');
        }
        if (stop(lines)) {
          req.destroy();
          resolve(lines);
        }
      });
      res.on('end', () => resolve(lines));
    });
    req.on('error', (e) => (lines.length ? resolve(lines) : reject(e)));
    setTimeout(() => {
      req.destroy();
      resolve(lines);
    }, ms).unref();
    req.end();
  });
}

async function http(method: string, url: string, body?: unknown, contentType = 'application/json') {
  const res = await fetch(url, {
    method,
    headers: { 'content-type': contentType },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Obj };
}

describe('test API server: kubectl against it', () => {
  let s: RunningApiServer;
  let kubectl: (...args: string[]) => Promise<string>;
  let kubeconfig: string;
  const dir = tmpDir('kapok-kubectl-');
  before(async () => {
    assert.ok(await hasKubectl(), 'kubectl must be installed (it is on these machines: 1.32)');
    s = await cluster();
    kubeconfig = s.kubeconfig(dir);
    kubectl = async (...args) =>
      (await run('kubectl', ['--kubeconfig', kubeconfig, ...args], { timeout: 30_000 })).stdout;
  });
  after(() => s?.close());

  it('applies the CRD and the example (client-side), re-applies a change, applies server-side, reads JSON', async () => {
    await kubectl('apply', '-f', join(root, 'deploy/kubernetes/crd-aijob.yaml'));
    assert.match(
      await kubectl('apply', '-f', join(root, 'deploy/kubernetes/aijob-example.yaml')),
      /aijob.kapok.io\/finetune-demo created/,
    );
    const changed = tmpFile(
      'aijob.yaml',
      (await import('node:fs'))
        .readFileSync(join(root, 'deploy/kubernetes/aijob-example.yaml'), 'utf8')
        .replace('priority: high', 'priority: low'),
    );
    assert.match(await kubectl('apply', '-f', changed), /configured/);
    let j = JSON.parse(await kubectl('get', 'aijob', 'finetune-demo', '-o', 'json'));
    assert.equal(j.spec.priority, 'low');
    assert.equal(j.metadata.generation, 2);
    assert.ok(j.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration']);
    const ssa = tmpFile(
      'ssa.yaml',
      `apiVersion: kapok.io/v1alpha1\nkind: AIJob\nmetadata:\n  name: ssa-job\nspec:\n  image: busybox\n  tasks:\n    - name: t\n      run: { executor: noop }\n`,
    );
    assert.match(await kubectl('apply', '--server-side', '-f', ssa), /ssa-job serverside-applied/);
    j = JSON.parse(await kubectl('get', 'aijob', 'ssa-job', '-o', 'json'));
    assert.deepEqual(j.spec.tasks, [{ name: 't', run: { executor: 'noop' } }]);
  });

  it('refuses a malformed AIJob by the CRD schema', async () => {
    const bad = tmpFile(
      'bad.yaml',
      `apiVersion: kapok.io/v1alpha1\nkind: AIJob\nmetadata:\n  name: bad\nspec:\n  image: busybox\n  tasks:\n    - name: t\n      resources: { gpus: two }\n      run: { executor: noop }\n`,
    );
    await assert.rejects(kubectl('apply', '-f', bad), (e: { stderr: string }) =>
      /spec\.tasks\.0\.resources\.gpus: must be integer/.test(e.stderr),
    );
    await assert.rejects(kubectl('get', 'aijob', 'bad'), /NotFound|not found/);
  });

  it('patches /status (a spec change in the same patch is ignored) and prints the printer columns', async () => {
    await kubectl(
      'patch',
      'aijob',
      'finetune-demo',
      '--subresource=status',
      '--type=merge',
      '-p',
      '{"status":{"phase":"Running","tasksDone":"1/3"},"spec":{"priority":"critical"}}',
    );
    const j = JSON.parse(await kubectl('get', 'aijob', 'finetune-demo', '-o', 'json'));
    assert.equal(j.status.phase, 'Running');
    assert.equal(j.spec.priority, 'low');
    assert.equal(j.metadata.generation, 2);
    assert.match(
      await kubectl('get', 'aijobs'),
      /NAME\s+PHASE\s+TASKS\s+DEADLINE\s+AGE\n(.*\n)*finetune-demo\s+Running\s+1\/3/,
    );
  });

  it('watches (kubectl get --watch: the table, then each change) and deletes', async () => {
    const w = spawn('kubectl', ['--kubeconfig', kubeconfig, 'get', 'aijobs', '--watch']);
    let out = '';
    w.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    try {
      await until('initial table', () => /ssa-job/.test(out), 20_000);
      await kubectl(
        'patch',
        'aijob',
        'ssa-job',
        '--subresource=status',
        '--type=merge',
        '-p',
        '{"status":{"phase":"Watched"}}',
      );
      await until('the change in the watch', () => /ssa-job\s+Watched/.test(out), 20_000);
    } finally {
      w.kill();
    }
    assert.match(await kubectl('delete', 'aijob', 'ssa-job'), /deleted/);
    await assert.rejects(kubectl('get', 'aijob', 'ssa-job'), /not found/);
  });
});

describe('test API server: what the operator relies on', () => {
  let s: RunningApiServer;
  let base: string;
  before(async () => {
    s = await cluster({ bookmarkMs: 100 });
    base = `${s.url}/apis/kapok.io/v1alpha1/namespaces/default/aijobs`;
  });
  after(() => s?.close());
  const job = (name: string, labels: Record<string, string> = {}) => ({
    apiVersion: 'kapok.io/v1alpha1',
    kind: 'AIJob',
    metadata: { name, labels },
    spec: { image: 'busybox', tasks: [{ name: 't', run: { executor: 'noop' } }] },
  });

  it('optimistic concurrency: an update with a stale resourceVersion gets 409; generation moves with the spec only', async () => {
    const created = (await http('POST', base, job('occ'))).body;
    assert.equal(created.metadata.generation, 1);
    const ok = await http('PUT', `${base}/occ`, { ...created, spec: { ...created.spec, priority: 'high' } });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.metadata.generation, 2);
    const stale = await http('PUT', `${base}/occ`, {
      ...created,
      spec: { ...created.spec, priority: 'low' },
    });
    assert.equal(stale.status, 409);
    assert.equal(stale.body.reason, 'Conflict');
    const st = await http('PUT', `${base}/occ/status`, { ...ok.body, status: { phase: 'Running' } });
    assert.equal(st.body.metadata.generation, 2);
    assert.equal((await http('POST', base, job('occ'))).status, 409);
  });

  it('merge and JSON patch; strategic merge refused on a custom resource (415)', async () => {
    await http('POST', base, job('patched'));
    const m = await http(
      'PATCH',
      `${base}/patched`,
      { metadata: { labels: { team: 'a' } } },
      'application/merge-patch+json',
    );
    assert.equal(m.body.metadata.labels.team, 'a');
    const j = await http(
      'PATCH',
      `${base}/patched`,
      [
        { op: 'add', path: '/spec/priority', value: 'critical' },
        { op: 'test', path: '/metadata/labels/team', value: 'a' },
      ],
      'application/json-patch+json',
    );
    assert.equal(j.body.spec.priority, 'critical');
    const failed = await http(
      'PATCH',
      `${base}/patched`,
      [{ op: 'test', path: '/metadata/labels/team', value: 'b' }],
      'application/json-patch+json',
    );
    assert.equal(failed.status, 400);
    assert.equal(
      (await http('PATCH', `${base}/patched`, {}, 'application/strategic-merge-patch+json')).status,
      415,
    );
  });

  it('label selectors on list and watch', async () => {
    await http('POST', base, job('sel-a', { tier: 'gold', zone: 'x' }));
    await http('POST', base, job('sel-b', { tier: 'silver' }));
    const names = async (sel: string) =>
      (await http('GET', `${base}?labelSelector=${encodeURIComponent(sel)}`)).body.items
        .map((o: { metadata: { name: string } }) => o.metadata.name)
        .sort();
    assert.deepEqual(await names('tier=gold'), ['sel-a']);
    assert.deepEqual(await names('tier in (gold,silver)'), ['sel-a', 'sel-b']);
    assert.deepEqual(await names('tier,!zone'), ['sel-b']);
    assert.deepEqual(await names('tier!=gold,tier'), ['sel-b']);
  });

  it('watch from a resourceVersion replays what followed, sends BOOKMARKs, and answers 410 Gone after compaction', async () => {
    const list = (await http('GET', base)).body;
    const rv = list.metadata.resourceVersion;
    await http('POST', base, job('w1'));
    await http('DELETE', `${base}/w1`);
    const lines = await watchLines(
      `${base}?watch=true&resourceVersion=${rv}&allowWatchBookmarks=true`,
      (ls) => ls.some((l) => l.type === 'BOOKMARK'),
    );
    assert.deepEqual(
      lines
        .filter((l) => l.type !== 'BOOKMARK')
        .map((l) => `${l.type} ${(l.object as { metadata: { name: string } }).metadata.name}`),
      ['ADDED w1', 'DELETED w1'],
    );
    assert.ok(
      Number(
        (lines.find((l) => l.type === 'BOOKMARK')?.object as Obj | undefined)?.metadata.resourceVersion,
      ) > Number(rv),
    );
    s.api.store.compact();
    const gone = await watchLines(`${base}?watch=true&resourceVersion=${rv}`, (ls) => ls.length > 0);
    assert.equal(gone[0]?.type, 'ERROR');
    assert.equal((gone[0]?.object as Obj | undefined)?.code, 410);
  });

  it('finalizers hold a deletion (deletionTimestamp) and owner references are garbage-collected', async () => {
    const owner = (
      await http('POST', base, { ...job('owner'), metadata: { name: 'owner', finalizers: ['x/y'] } })
    ).body;
    await http('POST', `${s.url}/api/v1/namespaces/default/pods`, {
      metadata: {
        name: 'child',
        ownerReferences: [
          { apiVersion: 'kapok.io/v1alpha1', kind: 'AIJob', name: 'owner', uid: owner.metadata.uid },
        ],
      },
      spec: { containers: [{ name: 'c', image: 'busybox' }] },
    });
    const marked = await http('DELETE', `${base}/owner`);
    assert.ok(marked.body.metadata.deletionTimestamp);
    assert.equal((await http('GET', `${base}/owner`)).status, 200);
    assert.equal(s.api.store.list(PODS, 'default').length, 1);
    await http('PATCH', `${base}/owner`, { metadata: { finalizers: null } }, 'application/merge-patch+json');
    assert.equal((await http('GET', `${base}/owner`)).status, 404);
    await until('child collected', () => s.api.store.list(PODS, 'default').length === 0);
    assert.equal(
      s.api.store.list(AIJOBS, 'default').some((o) => o.metadata.name === 'owner'),
      false,
    );
  });
});
