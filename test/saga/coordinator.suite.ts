import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Store } from '../../src/ports/store.js';
import { type Bank, createBank } from './bank.js';
import { opsOf, type Rig, rig, sagaConfig } from './setup.js';

/**
 * The coordinator against one Store dialect (run by coordinator.test.ts on SQLite and
 * coordinator-postgres.int.test.ts on PostgreSQL). Branches are a real bank service on loopback
 * whose operations go through the barrier in its own database; each test injects one fault.
 */
export function coordinatorSuite(
  dialect: string,
  stores: () => Promise<{ coordinator: Store; bank: Store; close(): Promise<void> }>,
): void {
  describe(`saga coordinator on ${dialect}`, () => {
    let r: Rig;
    let bank: Bank;
    let close: () => Promise<void>;
    let n = 0;
    const gid = () => `${dialect}-${process.pid}-${++n}`;
    const transfer = (
      g: string,
      from: string,
      to: string,
      amount: number,
      extra: Record<string, unknown> = {},
    ) => ({
      gid: g,
      mode: 'saga',
      branches: [
        {
          id: 'out',
          action: `${bank.url}${from}/debit`,
          compensate: `${bank.url}${from}/undo-debit`,
          payload: { amount },
        },
        {
          id: 'in',
          action: `${bank.url}${to}/credit`,
          compensate: `${bank.url}${to}/undo-credit`,
          payload: { amount },
        },
      ],
      ...extra,
    });
    const settle = async (g: string, ms = 10_000) => {
      const tx = await r.coordinator.settled(g, ms);
      return tx?.state;
    };

    before(async () => {
      const s = await stores();
      close = s.close;
      bank = await createBank(s.bank, { a: 1000, b: 1000, c: 1000 });
      r = await rig(
        s.coordinator,
        sagaConfig({ targets: [{ name: 'bank', url: bank.url, timeoutMs: 1000 }] }),
      );
    });
    after(async () => {
      await r.close();
      await bank.close();
      await close();
    });

    it('runs a two-branch saga to succeeded, each action once', async () => {
      const g = gid();
      assert.equal((await r.submit(transfer(g, 'a', 'b', 10))).created, true);
      assert.equal(await settle(g), 'succeeded');
      assert.equal(await bank.balance('a'), 990);
      assert.equal(await bank.balance('b'), 1010);
      assert.deepEqual(
        bank.calls.filter((c) => c.gid === g).map((c) => `${c.branch}.${c.op}:${c.outcome}`),
        ['out.action:executed', 'in.action:executed'],
      );
      // Each action counted once: the first one's 'calling' mark went in with the submit.
      assert.deepEqual(
        (await opsOf(r.store, g))
          .filter((o) => o.op === 'action')
          .map((o) => [o.branch, o.state, Number(o.attempts)]),
        [
          ['out', 'succeeded', 1],
          ['in', 'succeeded', 1],
        ],
      );
      assert.equal(
        (await r.submit(transfer(g, 'a', 'b', 10))).created,
        false,
        'same gid, same body: the existing one',
      );
      await assert.rejects(r.submit(transfer(g, 'a', 'b', 11)), {
        code: 'KAPOK_SAGA_GID_CONFLICT',
        status: 409,
      });
    });

    it('a refused action compensates what ran, and the refused branch gets a null compensation', async () => {
      const g = gid();
      bank.fault('in2/action', { kind: 'refuse' });
      const body = transfer(g, 'a', 'b', 7);
      (body.branches[1] as { id: string }).id = 'in2';
      await r.submit(body);
      assert.equal(await settle(g), 'aborted');
      const calls = bank.calls.filter((c) => c.gid === g).map((c) => `${c.branch}.${c.op}:${c.outcome}`);
      assert.deepEqual(calls, [
        'out.action:executed',
        'in2.action:refused',
        'in2.compensate:null-compensation',
        'out.compensate:executed',
      ]);
      assert.equal(await bank.total(), 3000);
      const ops = await opsOf(r.store, g);
      assert.match(
        ops.find((o) => o.branch === 'in2' && o.op === 'action')?.last_error ?? '',
        /^KAPOK_SAGA_BRANCH_REFUSED: bank refused \(409\): insufficient funds/,
      );
    });

    it('a response lost after commit is retried and the barrier does not apply it twice', async () => {
      const g = gid();
      bank.fault('lost/action', { kind: 'lose' });
      const body = transfer(g, 'a', 'c', 5);
      (body.branches[0] as { id: string }).id = 'lost';
      await r.submit({ ...body, maxAttempts: 3 });
      // Every answer of `lost` is lost: the action is retried (duplicates), then given up and compensated.
      assert.equal(await settle(g), 'aborted');
      const outs = bank.calls
        .filter((c) => c.gid === g && c.branch === 'lost')
        .map((c) => `${c.op}:${c.outcome}`);
      assert.deepEqual(outs, [
        'action:executed',
        'action:duplicate',
        'action:duplicate',
        'compensate:executed',
      ]);
      assert.equal(await bank.total(), 3000);
      bank.faults.delete('lost/action');
    });

    it('a try arriving after its cancel is refused by the barrier (hanging), the cancel is a null compensation', async () => {
      const g = gid();
      // Every try is held 3 s before it reaches the barrier; the coordinator gives up on each at 500 ms.
      bank.fault('slow/try', { kind: 'delay', ms: 3000 });
      await r.submit({
        gid: g,
        mode: 'tcc',
        maxAttempts: 2,
        branches: [
          {
            id: 'slow',
            try: `${bank.url}a/try`,
            confirm: `${bank.url}a/confirm`,
            cancel: `${bank.url}a/cancel`,
            payload: { amount: 50 },
            timeoutMs: 500,
          },
        ],
      });
      assert.equal(await settle(g), 'aborted');
      const done = Date.now() + 8000;
      while (
        bank.calls.filter((c) => c.gid === g && c.op === 'try' && c.outcome).length < 2 &&
        Date.now() < done
      )
        await new Promise((res) => setTimeout(res, 50));
      const outs = bank.calls.filter((c) => c.gid === g).map((c) => `${c.op}:${c.outcome}`);
      assert.deepEqual(
        outs.filter((o) => o.startsWith('try')),
        ['try:hanging', 'try:hanging'],
        outs.join(),
      );
      assert.equal(outs.filter((o) => o === 'cancel:null-compensation').length, 1, outs.join());
      assert.equal(await bank.total(), 3000, 'the late tries changed nothing');
      assert.match(
        (await opsOf(r.store, g)).find((o) => o.op === 'try')?.last_error ?? '',
        /KAPOK_SAGA_BRANCH_TIMEOUT/,
      );
      bank.faults.delete('slow/try');
    });

    it('a compensation failing N times then succeeding ends aborted after N+1 calls, honouring the retry interval', async () => {
      const g = gid();
      bank.fault('flaky/compensate', { kind: 'fail', times: 3 });
      bank.fault('boom/action', { kind: 'refuse' });
      await r.submit({
        gid: g,
        mode: 'saga',
        retryIntervalMs: 80,
        branches: [
          {
            id: 'flaky',
            action: `${bank.url}a/debit`,
            compensate: `${bank.url}a/undo-debit`,
            payload: { amount: 3 },
          },
          {
            id: 'boom',
            action: `${bank.url}b/credit`,
            compensate: `${bank.url}b/undo-credit`,
            payload: { amount: 3 },
          },
        ],
      });
      assert.equal(await settle(g), 'aborted');
      const comp = bank.calls.filter((c) => c.gid === g && c.branch === 'flaky' && c.op === 'compensate');
      assert.deepEqual(
        comp.map((c) => c.outcome),
        ['failed', 'failed', 'failed', 'executed'],
      );
      // Backoff: attempt k waits in [d/2, d], d = min(cap 200, 80 · 2^(k-1)).
      const gaps = comp.slice(1).map((c, i) => c.at - (comp[i] as { at: number }).at);
      const caps = [80, 160, 200];
      for (const [i, gap] of gaps.entries()) {
        assert.ok(gap >= (caps[i] as number) / 2 - 5, `gap ${i + 1} ${gap} ms below half of ${caps[i]}`);
        assert.ok(gap <= (caps[i] as number) + 400, `gap ${i + 1} ${gap} ms far above ${caps[i]} (cap 200)`);
      }
      assert.equal(await bank.total(), 3000);
    });

    it('a compensation that always fails is dead-lettered (table, event) after maxAttempts, and kapok saga retry finishes it', async () => {
      const g = gid();
      bank.fault('stuck/compensate', { kind: 'fail', times: 1_000_000 });
      bank.fault('nope/action', { kind: 'refuse' });
      await r.submit({
        gid: g,
        mode: 'saga',
        maxAttempts: 3,
        branches: [
          {
            id: 'stuck',
            action: `${bank.url}c/debit`,
            compensate: `${bank.url}c/undo-debit`,
            payload: { amount: 9 },
          },
          {
            id: 'nope',
            action: `${bank.url}a/credit`,
            compensate: `${bank.url}a/undo-credit`,
            payload: { amount: 9 },
          },
        ],
      });
      assert.equal(await settle(g), 'dead');
      assert.equal(
        bank.calls.filter((c) => c.gid === g && c.op === 'compensate' && c.branch === 'stuck').length,
        3,
        'bounded: 3 calls',
      );
      const [row] = await r.store.query<{ branch: string; op: string; reason: string }>(
        'SELECT branch, op, reason FROM saga_dead WHERE gid = ?',
        [g],
      );
      assert.equal(row?.branch, 'stuck');
      assert.match(
        row?.reason ?? '',
        /KAPOK_SAGA_BRANCH_UNAVAILABLE: bank answered 500: an HTML error page \(500 Internal Error\)/,
      );
      const deadline = Date.now() + 3000;
      while (!r.dead.some((e) => e.data.gid === g) && Date.now() < deadline)
        await new Promise((res) => setTimeout(res, 20));
      assert.ok(
        r.dead.some((e) => e.data.gid === g && e.data.op === 'compensate'),
        'saga.dlq.added published',
      );
      assert.equal(await bank.balance('c'), 991, 'the debit is still applied: people must act');
      const { retryTransaction } = await import('../../src/saga/admin.js');
      bank.faults.delete('stuck/compensate');
      await retryTransaction(r.store, g);
      assert.equal(await settle(g), 'aborted');
      assert.equal(await bank.total(), 3000);
      const [resolved] = await r.store.query<{ resolution: string }>(
        'SELECT resolution FROM saga_dead WHERE gid = ?',
        [g],
      );
      assert.equal(resolved?.resolution, 'retried');
    });

    it('bounded forward retries: an action answering 500 is called maxAttempts times, then the saga compensates', async () => {
      const g = gid();
      bank.fault('down/action', { kind: 'fail', times: 1_000_000 });
      const body = transfer(g, 'b', 'c', 4, { maxAttempts: 4 });
      (body.branches[1] as { id: string }).id = 'down';
      await r.submit(body);
      assert.equal(await settle(g), 'aborted');
      assert.equal(
        bank.calls.filter((c) => c.gid === g && c.branch === 'down' && c.op === 'action').length,
        4,
      );
      assert.equal(await bank.total(), 3000);
      bank.faults.delete('down/action');
    });

    it('tcc: try all, then confirm all; concurrent groups run together', async () => {
      const g = gid();
      const br = (id: string, acct: string) => ({
        id,
        try: `${bank.url}${acct}/try`,
        confirm: `${bank.url}${acct}/confirm`,
        cancel: `${bank.url}${acct}/cancel`,
        payload: { amount: 1 },
      });
      await r.submit({ gid: g, mode: 'tcc', branches: [[br('t1', 'a'), br('t2', 'b')], br('t3', 'c')] });
      assert.equal(await settle(g), 'succeeded');
      const ops = (await opsOf(r.store, g)).map((o) => `${o.branch}.${o.op}:${o.state}`).sort();
      // The bank's try takes the amount out of the account (a reservation the confirm keeps).
      assert.equal(await bank.total(), 2997);
      assert.deepEqual(ops, [
        't1.cancel:pending',
        't1.confirm:succeeded',
        't1.try:succeeded',
        't2.cancel:pending',
        't2.confirm:succeeded',
        't2.try:succeeded',
        't3.cancel:pending',
        't3.confirm:succeeded',
        't3.try:succeeded',
      ]);
    });

    it('lists retrying transactions, and the global timeout turns a stuck forward phase to compensation', async () => {
      const g = gid();
      const before = await bank.total();
      bank.fault('wait/action', { kind: 'fail', times: 1_000_000 });
      const body = transfer(g, 'a', 'b', 2, { timeoutMs: 2600, maxAttempts: 1000, retryIntervalMs: 100 });
      (body.branches[1] as { id: string }).id = 'wait';
      await r.submit(body);
      await new Promise((res) => setTimeout(res, 400));
      const { listTransactions } = await import('../../src/saga/admin.js');
      const page = await listTransactions(r.store, { state: 'retrying', limit: 100 });
      assert.ok(
        page.transactions.some((t) => (t as { gid: string }).gid === g),
        'listed as retrying',
      );
      assert.equal(await settle(g, 10_000), 'aborted');
      assert.match((await r.coordinator.get(g))?.reason ?? '', /global timeout/);
      const n = bank.calls.filter((c) => c.gid === g && c.branch === 'wait').length;
      assert.ok(n < 40, `bounded by the global timeout, not endless (${n} calls)`);
      assert.equal(await bank.total(), before);
      bank.faults.delete('wait/action');
    });
  });
}
