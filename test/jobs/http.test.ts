import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { type RunningApp, startApp } from '../../src/app.js';
import { loadKapokConfig } from '../../src/config.js';
import { offYaml } from '../helpers/config.js';
import { captureLogs } from '../helpers/logs.js';
import { tmpDir, tmpFile } from '../helpers/tmp.js';
import { upgradeStatus } from '../helpers/ws.js';

/** /api/jobs and /ws/jobs on a running Kapok whose scheduler runs real processes. */

const KEK = '00112233445566778899aabbccddeeff';
const OPERATOR = 'operator-token-0000001';
const VIEWER = 'viewer-token-00000001';

async function start(dataDir: string): Promise<RunningApp> {
  const yaml = [
    `dataDir: ${dataDir}`,
    'http: { host: 127.0.0.1, port: 0, bodyLimitBytes: 65536 }',
    'log: { level: warn }',
    'admin:',
    '  tokens:',
    `    - { name: ops-alice, role: operator, token: ${OPERATOR} }`,
    `    - { name: view-bob, role: viewer, token: ${VIEWER} }`,
    `audit: { enabled: true, kek: "${KEK}" }`,
    'jobs:',
    '  enabled: true',
    '  pollMs: 50',
    '  leaseS: 2',
    '  heartbeatS: 0.2',
    '  executors: [process, noop]',
    '  worker: { gpus: none, slots: 4 }',
    ...offYaml('jobs', 'audit'),
  ].join('\n');
  return startApp(loadKapokConfig({ file: tmpFile('kapok.yaml', yaml), env: {}, cwd: tmpDir() }), {
    logDestination: captureLogs(),
  });
}

// biome-ignore lint/suspicious/noExplicitAny: test reads of JSON answers
type Json = Record<string, any>;

describe('jobs HTTP API', () => {
  let app: RunningApp;
  let base: string;
  const call = async (
    method: string,
    path: string,
    o: { token?: string | null; body?: unknown; type?: string } = {},
  ) => {
    const token = o.token === undefined ? OPERATOR : o.token;
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(o.body !== undefined ? { 'content-type': o.type ?? 'application/json' } : {}),
      },
      ...(o.body !== undefined ? { body: typeof o.body === 'string' ? o.body : JSON.stringify(o.body) } : {}),
    });
    const text = await res.text();
    let json: Json = {};
    try {
      json = JSON.parse(text);
    } catch {}
    return { status: res.status, json };
  };
  const waitFor = async (id: string, states: string[], ms = 15_000): Promise<Json> => {
    const until = Date.now() + ms;
    for (;;) {
      const { json } = await call('GET', `/api/jobs/${id}`, { token: VIEWER });
      if (states.includes(json.state)) return json;
      if (Date.now() > until)
        assert.fail(
          `job ${id} is ${json.state}, not ${states}: ${JSON.stringify(json.tasks?.map((t: Json) => [t.name, t.state, t.reason]))}`,
        );
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  before(async () => {
    app = await start(tmpDir('kapok-jobs-http-'));
    base = `http://127.0.0.1:${app.port}`;
  });
  after(() => app.stop());

  it('refuses missing, wrong and too-low credentials', async () => {
    const spec = { name: 'x', tasks: [{ name: 'a', run: { executor: 'noop' } }] };
    const none = await call('POST', '/api/jobs', { token: null, body: spec });
    assert.equal(none.status, 401);
    assert.equal(none.json.error.code, 'KAPOK_HTTP_UNAUTHORIZED');
    assert.equal(
      (await call('POST', '/api/jobs', { token: 'wrong-token-000000000', body: spec })).status,
      401,
    );
    const viewer = await call('POST', '/api/jobs', { token: VIEWER, body: spec });
    assert.equal(viewer.status, 403);
    assert.equal(viewer.json.error.code, 'KAPOK_HTTP_FORBIDDEN');
    assert.equal((await call('GET', '/api/jobs', { token: null })).status, 401);
    assert.equal(await upgradeStatus(`ws://127.0.0.1:${app.port}/ws/jobs`), 401);
    // No jobs.workerTokens here: the pull-worker API is closed to everyone, admin tokens included.
    for (const token of [OPERATOR, null]) {
      const w = await call('POST', '/api/jobs/workers/lease', { token, body: {} });
      assert.equal(w.status, 403);
      assert.equal(w.json.error.code, 'KAPOK_JOBS_WORKERS_DISABLED');
      assert.match(w.json.error.message, /jobs\.workerTokens/);
    }
  });

  it('refuses malformed, hostile and oversized specs with the task path', async () => {
    const bad = await call('POST', '/api/jobs', { body: '{"name": "x", "tasks": [' });
    assert.equal(bad.status, 400);
    const cycle = await call('POST', '/api/jobs', {
      body: 'name: c\ntasks:\n  - { name: a, needs: [b], run: { executor: noop } }\n  - { name: b, needs: [a], run: { executor: noop } }\n',
      type: 'application/yaml',
    });
    assert.equal(cycle.status, 400);
    assert.equal(cycle.json.error.code, 'KAPOK_JOBS_INVALID_SPEC');
    assert.match(cycle.json.error.message, /tasks\[0\] \(a\)\.needs: cycle a → b → a/);
    assert.ok(Array.isArray(cycle.json.error.details.problems));
    const off = await call('POST', '/api/jobs', {
      body: { name: 'h', tasks: [{ name: 'a', run: { executor: 'http', url: 'http://127.0.0.1:1/' } }] },
    });
    assert.equal(off.status, 400);
    assert.match(off.json.error.message, /tasks\[0\] \(a\)\.run\.executor: http is not enabled here/);
    const empty = await call('POST', '/api/jobs', { body: '', type: 'application/yaml' });
    assert.equal(empty.json.error?.code, 'KAPOK_JOBS_INVALID_SPEC');
    const big = await call('POST', '/api/jobs', {
      body: {
        name: 'b',
        tasks: [{ name: 'a', run: { executor: 'process', command: ['x'.repeat(70_000)] } }],
      },
    });
    assert.equal(big.status, 413);
    const arr = await call('POST', '/api/jobs', { body: [1, 2] });
    assert.equal(arr.json.error.code, 'KAPOK_JOBS_INVALID_SPEC');
  });

  it('runs a DAG of processes to Succeeded, shows it, lists it, and streams its events', async () => {
    const frames: Json[] = [];
    const ws = new WebSocket(`ws://127.0.0.1:${app.port}/ws/jobs`, {
      headers: { authorization: `Bearer ${VIEWER}` },
    });
    ws.on('message', (d) => frames.push(JSON.parse(String(d))));
    await new Promise((r) => ws.once('open', r));
    const { status, json } = await call('POST', '/api/jobs', {
      type: 'application/yaml',
      body: `name: etl
priority: high
tasks:
  - { name: extract, run: { executor: process, command: [sh, -c, "echo extracted"] } }
  - { name: t1, needs: [extract], run: { executor: process, command: [sh, -c, "echo t1"] } }
  - { name: t2, needs: [extract], run: { executor: process, command: [sh, -c, "echo t2 >&2"] } }
  - { name: load, needs: [t1, t2], run: { executor: noop } }
`,
    });
    assert.equal(status, 201, JSON.stringify(json));
    assert.equal(json.state, 'queued');
    const job = await waitFor(json.id, ['succeeded', 'failed']);
    assert.equal(job.state, 'succeeded');
    assert.deepEqual(
      job.tasks.map((t: Json) => [t.name, t.state, t.attempts.length, t.needs]),
      [
        ['extract', 'succeeded', 1, []],
        ['t1', 'succeeded', 1, ['extract']],
        ['t2', 'succeeded', 1, ['extract']],
        ['load', 'succeeded', 1, ['t1', 't2']],
      ],
    );
    const withOut = await call('GET', `/api/jobs/${json.id}?outputs=1`, { token: VIEWER });
    assert.equal(withOut.json.tasks[0].attempts[0].output, 'extracted\n');
    const list = await call('GET', '/api/jobs?state=succeeded&limit=10', { token: VIEWER });
    assert.ok(list.json.jobs.some((j: Json) => j.id === json.id));
    await new Promise((r) => setTimeout(r, 100));
    ws.close();
    const types = frames.filter((f) => f.jobId === json.id).map((f) => f.type);
    assert.equal(types[0], 'job.submitted');
    assert.equal(types.filter((t) => t === 'task.succeeded').length, 4);
    assert.equal(types.at(-1), 'job.finished');
  });

  it('answers bad queries and unknown ids clearly', async () => {
    for (const q of ['state=done', 'limit=0', 'limit=100000', 'color=red', 'before=yesterday']) {
      const r = await call('GET', `/api/jobs?${q}`, { token: VIEWER });
      assert.equal(r.status, 400, q);
      assert.equal(r.json.error.code, 'KAPOK_JOBS_BAD_QUERY', q);
    }
    const nf = await call('GET', '/api/jobs/../../etc/passwd', { token: VIEWER });
    assert.equal(nf.status, 404);
    const bad = await call('GET', '/api/jobs/not-a-job', { token: VIEWER });
    assert.equal(bad.json.error.code, 'KAPOK_JOBS_NOT_FOUND');
    const none = await call('POST', '/api/jobs/00000000-0000-4000-8000-000000000000/cancel');
    assert.equal(none.status, 404);
  });

  it('retries a failing task after its backoff and resumes from its checkpoint', async () => {
    // The first attempt checkpoints, then fails; the second finds the checkpoint and succeeds.
    const script = [
      'if [ -n "$CHECKPOINT_FILE" ]; then echo "resumed from $(cat $CHECKPOINT_FILE) at attempt $ATTEMPT"; exit 0; fi',
      `echo '::kapok-checkpoint:: {"data":"${Buffer.from('step-500').toString('base64')}"}'`,
      'exit 3',
    ].join('\n');
    const { json } = await call('POST', '/api/jobs', {
      body: {
        name: 'resume',
        tasks: [
          {
            name: 'train',
            run: { executor: 'process', command: ['sh', '-c', script] },
            retry: { maxAttempts: 3, backoff: { baseS: 0.3, jitter: 0 }, retryOn: [3] },
            checkpoint: { everyS: 60 },
          },
        ],
      },
    });
    const job = await waitFor(json.id, ['succeeded', 'failed']);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.tasks));
    const [a1, a2] = job.tasks[0].attempts;
    assert.deepEqual([a1.state, a1.exitCode, a2.state], ['failed', 3, 'succeeded']);
    assert.ok(Date.parse(a2.startedAt) - Date.parse(a1.finishedAt) >= 300, 'waited the backoff');
    const out = await call('GET', `/api/jobs/${json.id}?outputs=1`, { token: VIEWER });
    assert.equal(out.json.tasks[0].attempts[1].output, 'resumed from step-500 at attempt 2\n');
    const ck = await call('GET', `/api/jobs/${json.id}/tasks/train/checkpoint`, { token: VIEWER });
    assert.equal(Buffer.from(ck.json.data, 'base64').toString(), 'step-500');
  });

  it('cancels a running job at once (its process stops), retries it, and refuses retrying a success', async () => {
    const { json } = await call('POST', '/api/jobs', {
      body: {
        name: 'sleepy',
        tasks: [
          { name: 'nap', run: { executor: 'process', command: ['sh', '-c', 'echo $$ > pid; sleep 30'] } },
        ],
      },
    });
    const running = await waitFor(json.id, ['running']);
    assert.equal(running.state, 'running');
    await new Promise((r) => setTimeout(r, 200));
    const ckpt = await call('POST', `/api/jobs/${json.id}/tasks/nap/checkpoints`, {
      body: { data: Buffer.from('mid').toString('base64') },
    });
    assert.equal(ckpt.status, 201);
    const tooBig = await call('POST', `/api/jobs/${json.id}/tasks/nap/checkpoints`, {
      body: { uri: 's3://x' },
    });
    assert.equal(tooBig.json.error.code, 'KAPOK_JOBS_CHECKPOINT_INVALID');
    const c = await call('POST', `/api/jobs/${json.id}/cancel`);
    assert.equal(c.status, 200);
    assert.equal(c.json.state, 'cancelled');
    const done = await waitFor(json.id, ['cancelled']);
    assert.equal(done.tasks[0].state, 'cancelled');
    const r = await call('POST', `/api/jobs/${json.id}/retry`);
    assert.equal(r.status, 200);
    assert.ok(['running', 'queued'].includes(r.json.state));
    const r2 = await call('POST', `/api/jobs/${json.id}/retry`);
    assert.equal(r2.status, 409);
    assert.equal(r2.json.error.code, 'KAPOK_JOBS_CONFLICT');
    await call('POST', `/api/jobs/${json.id}/tasks/nap/cancel`);
    const after = await waitFor(json.id, ['cancelled']);
    assert.equal(after.tasks[0].attempts.length, 2);
  });

  it('exposes metrics and records the acts in the audit trail', async () => {
    const m = await (await fetch(`${base}/metrics`)).text();
    for (const name of [
      'kapok_jobs_queue_depth',
      'kapok_jobs_run_seconds_bucket',
      'kapok_jobs_wait_seconds_bucket',
      'kapok_jobs_retries_total',
      'kapok_jobs_gpus',
    ])
      assert.ok(m.includes(name), name);
    assert.match(m, /kapok_jobs_retries_total\{[^}]*\} [1-9]/);
    const rows = await app.store.query<{ actor: string; action: string; outcome: string }>(
      "SELECT actor, action, outcome FROM audit_log WHERE action LIKE 'jobs.%' OR (action = 'admin.auth.denied' AND target LIKE 'jobs:%')",
    );
    const acts = new Set(rows.map((r) => `${r.actor} ${r.action} ${r.outcome}`));
    for (const a of [
      'ops-alice jobs.job.submit ok',
      'ops-alice jobs.job.cancel ok',
      'ops-alice jobs.job.retry ok',
      'ops-alice jobs.task.cancel ok',
      'unauthenticated admin.auth.denied denied',
    ])
      assert.ok(acts.has(a), `${a} in ${[...acts].join(' | ')}`);
  });
});
