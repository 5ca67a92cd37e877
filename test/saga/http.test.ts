import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type RunningApp, startApp } from '../../src/app.js';
import { loadKapokConfig } from '../../src/config.js';
import { offYaml } from '../helpers/config.js';
import { captureLogs } from '../helpers/logs.js';
import { tmpDir, tmpFile } from '../helpers/tmp.js';
import { type Bank, createBank } from './bank.js';
import { sqliteStore } from './setup.js';

/**
 * /api/saga through a real `startApp`: the admin guard (roles, wrong credentials), gid idempotency,
 * every bad input of the issue answered 400/404/409/413/415 with nothing stored, the listing and the
 * acts on dead transactions, and the audit trail of each act.
 */
const OPERATOR = 'operator-token-0000001';
const VIEWER = 'viewer-token-00000001';
const KEK = '00112233445566778899aabbccddeeff';

describe('saga: HTTP API', () => {
  let app: RunningApp;
  let bank: Bank;
  let base: string;
  const call = async (
    method: string,
    path: string,
    body?: unknown,
    o: { token?: string | null; type?: string; raw?: string } = {},
  ) => {
    const token = o.token === undefined ? OPERATOR : o.token;
    const res = await fetch(`${base}/api/saga${path}`, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined || o.raw !== undefined
          ? { 'content-type': o.type ?? 'application/json' }
          : {}),
      },
      ...(o.raw !== undefined ? { body: o.raw } : body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
  const count = async () =>
    Number((await app.store.query<{ n: number }>('SELECT COUNT(*) AS n FROM saga_tx'))[0]?.n);
  const saga = (gid: string, extra: Record<string, unknown> = {}) => ({
    gid,
    mode: 'saga',
    branches: [
      {
        id: 'a',
        action: `${bank.url}a/debit`,
        compensate: `${bank.url}a/undo-debit`,
        payload: { amount: 1 },
      },
      { id: 'b', action: `${bank.url}b/credit`, payload: { amount: 1 } },
    ],
    ...extra,
  });

  before(async () => {
    bank = await createBank(await sqliteStore(), { a: 100, b: 100 });
    const dataDir = tmpDir('kapok-saga-http-');
    const yaml = [
      `dataDir: ${dataDir}`,
      'http: { host: 127.0.0.1, port: 0 }',
      'log: { level: warn }',
      'admin:',
      '  tokens:',
      `    - { name: ops-alice, role: operator, token: ${OPERATOR} }`,
      `    - { name: view-bob, role: viewer, token: ${VIEWER} }`,
      `audit: { enabled: true, kek: "${KEK}" }`,
      'saga:',
      '  enabled: true',
      '  pollMs: 20',
      '  retry: { baseMs: 20, maxMs: 100, maxAttempts: 2 }',
      '  targets:',
      `    - { name: bank, url: "${bank.url}", timeoutMs: 2000 }`,
      ...offYaml('saga', 'audit'),
    ].join('\n');
    const loaded = loadKapokConfig({ file: tmpFile('kapok.yaml', yaml), env: {}, cwd: dataDir });
    app = await startApp(loaded, { logDestination: captureLogs() });
    base = `http://127.0.0.1:${app.port}`;
  });
  after(async () => {
    await app.stop();
    await bank.close();
  });

  it('needs credentials: none or a wrong token 401, a viewer may read but not submit (403)', async () => {
    assert.equal((await call('POST', '/transactions', saga('auth-1'), { token: null })).status, 401);
    const wrong = await call('GET', '/transactions', undefined, { token: 'not-the-token-000000' });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.error.code, 'KAPOK_HTTP_UNAUTHORIZED');
    assert.equal((await call('POST', '/transactions', saga('auth-1'), { token: VIEWER })).status, 403);
    assert.equal((await call('GET', '/transactions', undefined, { token: VIEWER })).status, 200);
    assert.equal(await count(), 0);
  });

  it('same gid and body: 201 then 200 with the same transaction; another body: 409', async () => {
    const first = await call('POST', '/transactions', saga('t-1'));
    assert.equal(first.status, 201);
    assert.equal(first.body.created, true);
    const again = await call('POST', '/transactions', saga('t-1'));
    assert.equal(again.status, 200);
    assert.equal(again.body.created, false);
    assert.equal(again.body.transaction.gid, 't-1');
    const other = await call('POST', '/transactions', saga('t-1', { retryIntervalMs: 500 }));
    assert.equal(other.status, 409);
    assert.equal(other.body.error.code, 'KAPOK_SAGA_GID_CONFLICT');
    for (let i = 0; i < 100; i++) {
      const s = await call('GET', '/transactions/t-1', undefined, { token: VIEWER });
      if (s.body.state === 'succeeded') break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const shown = await call('GET', '/transactions/t-1', undefined, { token: VIEWER });
    assert.equal(shown.body.state, 'succeeded');
    assert.deepEqual(
      shown.body.branches.map(
        (b: { branch: string; op: string; state: string }) => `${b.branch}.${b.op}:${b.state}`,
      ),
      ['a.action:succeeded', 'a.compensate:pending', 'b.action:succeeded'],
    );
  });

  it('refuses bad input with a clear error, storing nothing', async () => {
    const before = await count();
    const cases: Array<[string, unknown, number, string, RegExp]> = [
      [
        'duplicate branch ids',
        {
          ...saga('bad-1'),
          branches: [
            { id: 'x', action: `${bank.url}a/debit`, compensate: `${bank.url}a/undo-debit` },
            { id: 'x', action: `${bank.url}b/credit` },
          ],
        },
        400,
        'KAPOK_SAGA_INVALID',
        /branch id x appears twice/,
      ],
      [
        'non-final step without compensation',
        {
          ...saga('bad-2'),
          branches: [
            { id: 'x', action: `${bank.url}a/debit` },
            { id: 'y', action: `${bank.url}b/credit` },
          ],
        },
        400,
        'KAPOK_SAGA_INVALID',
        /branch x\.compensate: every saga step but those of the last stage/,
      ],
      [
        'a scheme other than http(s)/nats',
        { ...saga('bad-3'), branches: [{ id: 'x', action: 'ftp://127.0.0.1/a' }] },
        400,
        'KAPOK_SAGA_URL_REFUSED',
        /not http\(s\):\/\/ or nats:\/\//,
      ],
      [
        'outside the allow-list',
        { ...saga('bad-4'), branches: [{ id: 'x', action: 'http://169.254.169.254/latest/meta-data' }] },
        400,
        'KAPOK_SAGA_URL_REFUSED',
        /outside saga\.targets/,
      ],
      [
        'a prefix trick on the allow-list',
        {
          ...saga('bad-4b'),
          branches: [{ id: 'x', action: `${bank.url.replace(/\/bank\/$/, '/bankrupt/a')}` }],
        },
        400,
        'KAPOK_SAGA_URL_REFUSED',
        /outside saga\.targets/,
      ],
      [
        'credentials in the URL',
        { ...saga('bad-4c'), branches: [{ id: 'x', action: `http://user:pw@${bank.url.slice(7)}a/debit` }] },
        400,
        'KAPOK_SAGA_URL_REFUSED',
        /malformed URL/,
      ],
      [
        'timeoutMs 0',
        saga('bad-5', { timeoutMs: 0 }),
        400,
        'KAPOK_SAGA_INVALID',
        /timeoutMs: must be above 0/,
      ],
      [
        'a negative branch timeout',
        { ...saga('bad-6'), branches: [{ id: 'x', action: `${bank.url}b/credit`, timeoutMs: -5 }] },
        400,
        'KAPOK_SAGA_INVALID',
        /branches\.0\.timeoutMs/,
      ],
      ['an unknown mode', { ...saga('bad-7'), mode: 'xa' }, 400, 'KAPOK_SAGA_INVALID', /mode/],
      ['an unknown field', { ...saga('bad-8'), evil: true }, 400, 'KAPOK_SAGA_INVALID', /evil/],
      ['a hostile gid', saga('../../etc/passwd'), 400, 'KAPOK_SAGA_INVALID', /gid: letters, digits/],
      ['no branches', { ...saga('bad-9'), branches: [] }, 400, 'KAPOK_SAGA_INVALID', /branches/],
      ['a JSON array', [1, 2], 400, 'KAPOK_SAGA_INVALID', /body/],
      [
        'tcc without cancel',
        {
          gid: 'bad-10',
          mode: 'tcc',
          branches: [{ id: 'x', try: `${bank.url}a/try`, confirm: `${bank.url}a/confirm` }],
        },
        400,
        'KAPOK_SAGA_INVALID',
        /branch x\.cancel: mode tcc needs it/,
      ],
      [
        'msg without queryPrepared',
        { gid: 'bad-11', mode: 'msg', branches: [{ id: 'x', action: `${bank.url}a/credit` }] },
        400,
        'KAPOK_SAGA_INVALID',
        /queryPrepared/,
      ],
    ];
    for (const [what, body, status, code, msg] of cases) {
      const res = await call('POST', '/transactions', body);
      assert.equal(res.status, status, what);
      assert.equal(res.body.error.code, code, what);
      assert.match(res.body.error.message, msg, what);
    }
    const big = await call('POST', '/transactions', undefined, {
      raw: JSON.stringify({ ...saga('big'), pad: 'x'.repeat(1024 * 1024) }),
    });
    assert.equal(big.status, 413);
    assert.equal(big.body.error.code, 'KAPOK_HTTP_BODY_TOO_LARGE');
    const truncated = await call('POST', '/transactions', undefined, {
      raw: JSON.stringify(saga('trunc')).slice(0, 40),
    });
    assert.equal(truncated.status, 400);
    const xml = await call('POST', '/transactions', undefined, { raw: '<tx/>', type: 'application/xml' });
    assert.equal(xml.status, 415);
    assert.equal(await count(), before, 'nothing stored');
  });

  it('unknown gid, branch or op: 404; acts in the wrong state: 409; bad queries: 400', async () => {
    const nf = await call('GET', '/transactions/no-such', undefined, { token: VIEWER });
    assert.equal(nf.status, 404);
    assert.equal(nf.body.error.code, 'KAPOK_SAGA_NOT_FOUND');
    assert.equal((await call('POST', '/transactions/no-such/submit', {})).status, 404);
    assert.equal((await call('POST', '/transactions/no-such/retry', {})).status, 404);
    assert.equal((await call('POST', '/transactions/t-1/skip', { branch: 'zz', op: 'action' })).status, 404);
    assert.equal((await call('POST', '/transactions/t-1/skip', { branch: 'a' })).status, 400);
    assert.equal(
      (await call('POST', '/transactions/t-1/skip', { branch: 'a', op: 'action', x: 1 })).status,
      400,
    );
    const state = await call('POST', '/transactions/t-1/retry', {});
    assert.equal(state.status, 409);
    assert.equal(state.body.error.code, 'KAPOK_SAGA_STATE');
    assert.equal((await call('POST', '/transactions/t-1/submit', {})).status, 409);
    assert.equal((await call('GET', '/transactions?state=bogus', undefined, { token: VIEWER })).status, 400);
    assert.equal((await call('GET', '/transactions?limit=0', undefined, { token: VIEWER })).status, 400);
    assert.equal((await call('GET', '/transactions?colour=red', undefined, { token: VIEWER })).status, 400);
    assert.equal(
      (await call('GET', '/transactions?cursor=%3Cx%3E', undefined, { token: VIEWER })).status,
      400,
    );
    assert.equal((await call('GET', '/dead-letters?open=maybe', undefined, { token: VIEWER })).status, 400);
  });

  it('lists by state with paging; a dead transaction is listed, shown with its dead letter, and finished when an operator skips the dead compensation', async () => {
    bank.fault('b/action', { kind: 'fail', times: 1_000_000 });
    bank.fault('a/compensate', { kind: 'fail', times: 1_000_000 });
    assert.equal((await call('POST', '/transactions', saga('dead-1'))).status, 201);
    let shown: { status: number; body: Record<string, unknown> } = { status: 0, body: {} };
    for (let i = 0; i < 200 && shown.body.state !== 'dead'; i++) {
      await new Promise((r) => setTimeout(r, 25));
      shown = await call('GET', '/transactions/dead-1', undefined, { token: VIEWER });
    }
    assert.equal(shown.body.state, 'dead');
    assert.equal((shown.body.deadLetters as unknown[]).length, 1);
    const dead = await call('GET', '/transactions?state=dead', undefined, { token: VIEWER });
    assert.deepEqual(
      dead.body.transactions.map((t: { gid: string }) => t.gid),
      ['dead-1'],
    );
    const letters = await call('GET', '/dead-letters', undefined, { token: VIEWER });
    assert.equal(letters.body.deadLetters[0].gid, 'dead-1');
    const page1 = await call('GET', '/transactions?limit=1', undefined, { token: VIEWER });
    assert.equal(page1.body.transactions.length, 1);
    const page2 = await call('GET', `/transactions?limit=1&cursor=${page1.body.next}`, undefined, {
      token: VIEWER,
    });
    assert.notEqual(page2.body.transactions[0].gid, page1.body.transactions[0].gid);
    bank.faults.clear();
    const skip = await call('POST', '/transactions/dead-1/skip', { branch: 'a', op: 'compensate' });
    assert.equal(skip.status, 200);
    for (let i = 0; i < 100; i++) {
      shown = await call('GET', '/transactions/dead-1', undefined, { token: VIEWER });
      if (shown.body.state === 'aborted') break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(shown.body.state, 'aborted', 'a skipped compensation lets the transaction finish');
    const audit = await app.store.query<{ actor: string; action: string; target: string; outcome: string }>(
      "SELECT actor, action, target, outcome FROM audit_log WHERE action LIKE 'saga.%' ORDER BY seq",
    );
    assert.ok(
      audit.some(
        (a) =>
          a.action === 'saga.transaction.create' &&
          a.target === 't-1' &&
          a.actor === 'ops-alice' &&
          a.outcome === 'ok',
      ),
    );
    assert.ok(audit.some((a) => a.action === 'saga.transaction.skip' && a.target === 'dead-1'));
    assert.ok(
      audit.some(
        (a) => a.action === 'saga.dead_letter' && a.target === 'dead-1/a/compensate' && a.actor === 'system',
      ),
    );
  });
});
