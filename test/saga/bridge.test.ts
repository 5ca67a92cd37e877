import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Store } from '../../src/ports/store.js';
import { sagaSchema } from '../../src/saga/config.js';
import { planTransaction } from '../../src/saga/spec.js';
import { eosStandIn, type StandIn, tongWebStandIn } from './middleware.js';
import { opsOf, type Rig, rig, sagaConfig, sqliteStore } from './setup.js';

/**
 * The middleware bridge against the stand-ins of test/saga/middleware.ts (an EOS-style TM and a
 * TongWeb-like gateway, since neither product is available here): the eos branch kind, header
 * injection and passthrough, JSON only, foreign error shapes mapped to the catalogue, a gateway slower
 * than its budget (TongWeb's 15 s, scaled to 300 ms), and the timeout order checked at submit.
 */
describe('saga: middleware bridge (EOS-style TM, TongWeb-like gateway)', () => {
  let r: Rig;
  let store: Store;
  let eos: StandIn;
  let tw: StandIn;
  const SESSION = 'tw-session-4f1c';

  before(async () => {
    store = await sqliteStore();
    eos = await eosStandIn();
    tw = await tongWebStandIn(SESSION);
    r = await rig(
      store,
      sagaConfig({
        targets: [
          { name: 'eos-tm', url: eos.url, kind: 'eos', timeoutMs: 1500, headers: { 'X-EOS-App': 'kapok' } },
          { name: 'tongweb', url: tw.url, kind: 'tongweb', timeoutMs: 300 },
        ],
      }),
    );
  });
  after(async () => {
    await r.close();
    await Promise.all([eos.close(), tw.close()]);
    await store.close();
  });

  const steps = [{ service: 'com.gov.tax.Ledger', operation: 'post', args: { amount: 10 } }];

  it('eos: prepare with {gid, steps}, then commit, with X-EOS-Transaction-ID passed through and the gid header', async () => {
    await r.submit(
      { gid: 'eos-1', mode: 'eos', branches: [{ id: 'tax', url: eos.url, steps }] },
      { 'x-eos-transaction-id': 'EOS-XID-77' },
    );
    assert.equal((await r.coordinator.settled('eos-1', 5000))?.state, 'succeeded');
    assert.deepEqual(
      eos.seen.map((s) => s.path),
      ['/eos/prepare', '/eos/commit'],
    );
    const [prep, commit] = eos.seen;
    assert.deepEqual(prep?.body, { gid: 'eos-1', steps });
    assert.deepEqual(commit?.body, { gid: 'eos-1' });
    assert.equal(prep?.headers['x-eos-transaction-id'], 'EOS-XID-77', 'passed through from the client');
    assert.equal(prep?.headers['x-kapok-saga-gid'], 'eos-1');
    assert.equal(prep?.headers['x-eos-app'], 'kapok', 'the target’s own header injected');
    assert.equal(prep?.headers['content-type'], 'application/json');
    assert.equal(eos.state.get('EOS-XID-77')?.status, 'committed');
  });

  it('eos: a TM without the client’s id gets the gid; an unparsable step is refused (200 {success:false}) and rolled back', async () => {
    eos.seen.length = 0;
    await r.submit({
      gid: 'eos-2',
      mode: 'eos',
      branches: [{ id: 'tax', url: eos.url, steps: ['not-a-step'] }],
    });
    assert.equal((await r.coordinator.settled('eos-2', 5000))?.state, 'aborted');
    assert.deepEqual(
      eos.seen.map((s) => s.path),
      ['/eos/prepare', '/eos/rollback'],
    );
    assert.equal(eos.seen[0]?.headers['x-eos-transaction-id'], 'eos-2');
    const ops = await opsOf(store, 'eos-2');
    assert.equal(
      ops.find((o) => o.op === 'prepare')?.last_error,
      'KAPOK_SAGA_BRANCH_REFUSED: eos-tm refused (200): EOS-4001 step not parsable',
    );
  });

  it('tcc with a TongWeb try and an EOS branch: the session passes to TongWeb only, both confirm', async () => {
    tw.seen.length = 0;
    eos.seen.length = 0;
    await r.submit(
      {
        gid: 'mix-1',
        mode: 'tcc',
        branches: [
          {
            id: 'web',
            try: `${tw.url}/try`,
            confirm: `${tw.url}/confirm`,
            cancel: `${tw.url}/cancel`,
            contentType: 'application/json',
          },
          { id: 'tm', kind: 'eos', url: eos.url, steps },
        ],
      },
      { 'x-tongweb-session': SESSION },
    );
    assert.equal((await r.coordinator.settled('mix-1', 5000))?.state, 'succeeded');
    assert.deepEqual(
      tw.seen.map((s) => s.path),
      ['/tw/try', '/tw/confirm'],
    );
    assert.equal(tw.seen[0]?.headers['x-tongweb-session'], SESSION);
    assert.equal(eos.seen[0]?.headers['x-tongweb-session'], undefined, 'not passed to another kind');
  });

  it('TongWeb: a missing session maps {errorCode, errorMessage} to KAPOK_SAGA_BRANCH_REFUSED; a non-JSON content type is refused at submit', async () => {
    await r.submit({ gid: 'tw-1', mode: 'saga', branches: [{ id: 'web', action: `${tw.url}/pay` }] });
    assert.equal((await r.coordinator.settled('tw-1', 5000))?.state, 'aborted');
    assert.equal(
      (await opsOf(store, 'tw-1'))[0]?.last_error,
      'KAPOK_SAGA_BRANCH_REFUSED: tongweb refused (401): TW-401 session expired',
    );
    assert.throws(
      () =>
        planTransaction(
          {
            gid: 'tw-2',
            mode: 'saga',
            branches: [{ id: 'web', action: `${tw.url}/pay`, contentType: 'text/xml' }],
          },
          r.config,
        ),
      { code: 'KAPOK_SAGA_INVALID', message: /TongWeb, which takes application\/json only/ },
    );
  });

  it('TongWeb slower than its budget (15 s scaled to 300 ms): KAPOK_SAGA_BRANCH_TIMEOUT, bounded retries, then compensation', async () => {
    tw.seen.length = 0;
    tw.delay = (path) => (path.endsWith('/pay') ? 600 : 0);
    try {
      await r.submit(
        {
          gid: 'tw-slow',
          mode: 'saga',
          maxAttempts: 2,
          branches: [
            { id: 'web', action: `${tw.url}/pay`, compensate: `${tw.url}/refund` },
            { id: 'tm', action: `${eos.url}/x` },
          ],
        },
        { 'x-tongweb-session': SESSION },
      );
      assert.equal((await r.coordinator.settled('tw-slow', 8000))?.state, 'aborted');
      const ops = await opsOf(store, 'tw-slow');
      const act = ops.find((o) => o.branch === 'web' && o.op === 'action');
      assert.equal(act?.attempts, 2);
      assert.match(
        act?.last_error ?? '',
        /^KAPOK_SAGA_BRANCH_TIMEOUT: tongweb \(tongweb\) did not answer action within 300 ms/,
      );
      assert.equal(
        ops.find((o) => o.branch === 'web' && o.op === 'compensate')?.state,
        'succeeded',
        'the possibly-applied action is compensated',
      );
    } finally {
      tw.delay = () => 0;
    }
  });

  it('timeouts at submit: the brief’s coordinator 30 s against an EOS TM at 60 s is refused unless lateConfirm is declared', () => {
    const cfg = sagaSchema.parse({
      enabled: true,
      targets: [
        { name: 'tm', url: 'http://eos.internal/eos', kind: 'eos' },
        { name: 'tw', url: 'http://tw.internal/', kind: 'tongweb' },
      ],
    });
    assert.equal(cfg.coordinatorTimeoutMs, 30_000);
    const eosBody = (extra = {}) => ({
      gid: 'e',
      mode: 'eos',
      branches: [{ id: 'b', url: 'http://eos.internal/eos', steps, ...extra }],
    });
    assert.throws(() => planTransaction(eosBody(), cfg), {
      code: 'KAPOK_SAGA_TIMEOUT_ORDER',
      status: 400,
      message: /tm may take 60000 ms.*lateConfirm/,
    });
    const ok = planTransaction(eosBody({ lateConfirm: 'retry' }), cfg);
    assert.ok(
      ok.ops.every((o) => o.timeoutMs === 30_000),
      'the coordinator waits no longer than its own limit',
    );
    // TongWeb's 15 s is below 30 s: accepted as is.
    const tw = planTransaction(
      { gid: 't', mode: 'saga', branches: [{ id: 'w', action: 'http://tw.internal/pay' }] },
      cfg,
    );
    assert.equal(tw.ops[0]?.timeoutMs, 15_000);
    assert.throws(() => planTransaction({ ...eosBody({ lateConfirm: 'retry' }), timeoutMs: 30_000 }, cfg), {
      code: 'KAPOK_SAGA_TIMEOUT_ORDER',
      message: /branch < coordinator < global/,
    });
    assert.throws(() => planTransaction({ ...eosBody({ lateConfirm: 'retry', timeoutMs: 0 }) }, cfg), {
      code: 'KAPOK_SAGA_INVALID',
      message: /timeoutMs: must be above 0/,
    });
  });

  it('lateConfirm dead-letter: a commit past the coordinator’s limit goes to people at once, not retried', async () => {
    eos.seen.length = 0;
    eos.delay = (path) => (path.endsWith('/commit') ? 2600 : 0);
    try {
      await r.submit({
        gid: 'eos-late',
        mode: 'eos',
        branches: [{ id: 'tax', url: eos.url, steps, timeoutMs: 2500, lateConfirm: 'dead-letter' }],
      });
      assert.equal((await r.coordinator.settled('eos-late', 8000))?.state, 'dead');
      const commit = (await opsOf(store, 'eos-late')).find((o) => o.op === 'commit');
      assert.equal(commit?.attempts, 1, 'waited the coordinator’s 2 s once, then gave up');
      assert.match(
        commit?.last_error ?? '',
        /KAPOK_SAGA_BRANCH_TIMEOUT: eos-tm \(eos\) did not answer commit within 2000 ms/,
      );
      const [dead] = await store.query<{ op: string }>('SELECT op FROM saga_dead WHERE gid = ?', [
        'eos-late',
      ]);
      assert.equal(dead?.op, 'commit');
    } finally {
      eos.delay = () => 0;
    }
  });

  it('msg: prepared, submitted, then its actions run; an orphan is decided by queryPrepared (2xx: sent, 409: dropped)', async () => {
    const body = (gid: string, q: string) => ({
      gid,
      mode: 'msg',
      queryPrepared: `${eos.url}/${q}`,
      branches: [{ id: 'm1', action: `${tw.url}/notify` }],
    });
    await r.submit(body('msg-1', 'commit'), { 'x-tongweb-session': SESSION });
    assert.equal((await r.coordinator.get('msg-1'))?.state, 'prepared');
    await r.coordinator.submitPrepared('msg-1');
    assert.equal((await r.coordinator.settled('msg-1', 5000))?.state, 'succeeded');
    await assert.rejects(r.coordinator.submitPrepared('nope'), { code: 'KAPOK_SAGA_NOT_FOUND', status: 404 });
    await assert.rejects(r.coordinator.submitPrepared('eos-1'), { code: 'KAPOK_SAGA_STATE', status: 409 });
    // Orphans: never submitted; after coordinatorTimeoutMs (2 s here) the coordinator asks.
    eos.state.set('msg-2', { steps: [], status: 'prepared' });
    await r.submit(body('msg-2', 'commit'), {
      'x-tongweb-session': SESSION,
      'x-eos-transaction-id': 'msg-2',
    });
    await r.submit(body('msg-3', 'missing'), { 'x-tongweb-session': SESSION });
    assert.equal((await r.coordinator.settled('msg-2', 8000))?.state, 'succeeded');
    const m3 = await r.coordinator.settled('msg-3', 8000);
    assert.equal(m3?.state, 'aborted');
    assert.match(m3?.reason ?? '', /queryPrepared: KAPOK_SAGA_BRANCH_REFUSED/);
  });
});
