import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  BARRIER_TABLE_SQL,
  type BarrierDb,
  barrier,
  barrierBody,
  barrierKey,
  barrierStatus,
} from '../../src/saga/barrier.js';

/**
 * The barrier's semantics on one database (run on SQLite and PostgreSQL): `run(fn)` executes fn in
 * one transaction of the branch's own database, handing it the barrier handle.
 */
export interface BarrierRig {
  run<T>(fn: (tx: BarrierDb) => Promise<T>): Promise<T>;
  /** Rows of the business table (a counter per gid). */
  applied(gid: string): Promise<number>;
}

export function barrierSuite(
  dialect: string,
  make: () => Promise<BarrierRig & { setup(sql: string): Promise<void>; close(): Promise<void> }>,
): void {
  describe(`saga barrier on ${dialect}`, () => {
    let rig: BarrierRig & { setup(sql: string): Promise<void>; close(): Promise<void> };
    before(async () => {
      rig = await make();
    });
    after(() => rig.close());
    const key = (gid: string, op: string) => ({ gid, branch: 'b1', op });
    const work = (tx: BarrierDb, gid: string) => () =>
      tx.execute('INSERT INTO biz (gid, n) VALUES (?, 1)', [gid]).then(() => 'done');
    const call = (gid: string, op: string) =>
      rig.run((tx) => barrier(tx, key(gid, op), work(tx, `${gid}:${op}`)));

    it('creates its table idempotently', async () => {
      await rig.setup(BARRIER_TABLE_SQL);
      await rig.setup(BARRIER_TABLE_SQL);
      await rig.setup('CREATE TABLE IF NOT EXISTS biz (gid TEXT NOT NULL, n INTEGER NOT NULL)');
    });

    it('a repeated action is a duplicate: fn runs once', async () => {
      assert.deepEqual(await call('g1', 'action'), { outcome: 'executed', result: 'done' });
      assert.deepEqual(await call('g1', 'action'), { outcome: 'duplicate' });
      assert.equal(await rig.applied('g1:action'), 1);
    });

    it('a compensation whose action never ran is a null compensation; the late action is hanging', async () => {
      const c = await call('g2', 'compensate');
      assert.equal(c.outcome, 'null-compensation');
      assert.equal(barrierStatus(c.outcome), 200);
      const late = await call('g2', 'action');
      assert.equal(late.outcome, 'hanging');
      assert.equal(barrierStatus(late.outcome), 409);
      assert.equal(
        (barrierBody(late.outcome, key('g2', 'action')).error as { code: string }).code,
        'KAPOK_SAGA_BARRIER_HANGING',
      );
      assert.equal(await rig.applied('g2:compensate'), 0);
      assert.equal(await rig.applied('g2:action'), 0);
      assert.equal((await call('g2', 'compensate')).outcome, 'duplicate');
    });

    it('tcc and eos pairs: cancel after try runs; rollback before prepare is null', async () => {
      assert.equal((await call('g3', 'try')).outcome, 'executed');
      assert.equal((await call('g3', 'cancel')).outcome, 'executed');
      assert.equal((await call('g3', 'cancel')).outcome, 'duplicate');
      assert.equal((await call('g4', 'rollback')).outcome, 'null-compensation');
      assert.equal((await call('g4', 'prepare')).outcome, 'hanging');
      assert.equal(
        (await call('g3', 'confirm')).outcome,
        'executed',
        'confirm has no origin: plain once-only',
      );
    });

    it('fn throwing rolls the barrier row back with the business change: a retry runs fn again', async () => {
      await assert.rejects(
        rig.run((tx) =>
          barrier(tx, key('g5', 'action'), async () => {
            await tx.execute('INSERT INTO biz (gid, n) VALUES (?, 1)', ['g5:action']);
            throw new Error('business rule failed');
          }),
        ),
        /business rule failed/,
      );
      assert.equal(await rig.applied('g5:action'), 0);
      assert.equal((await call('g5', 'action')).outcome, 'executed');
      assert.equal(await rig.applied('g5:action'), 1);
    });

    it('an action and its compensation racing: exactly one of (executed + executed) or (null + hanging)', async () => {
      for (let i = 0; i < 20; i++) {
        const gid = `race-${i}`;
        const [a, c] = await Promise.all([call(gid, 'action'), call(gid, 'compensate')]);
        const pair = `${a.outcome}+${c.outcome}`;
        assert.ok(pair === 'executed+executed' || pair === 'hanging+null-compensation', pair);
        assert.equal(await rig.applied(`${gid}:action`), pair === 'executed+executed' ? 1 : 0);
      }
    });

    it('reads its key from the coordinator headers and refuses missing or hostile ones', () => {
      assert.deepEqual(
        barrierKey({ 'x-kapok-saga-gid': 'g', 'x-kapok-saga-branch': 'b', 'x-kapok-saga-op': 'cancel' }),
        { gid: 'g', branch: 'b', op: 'cancel' },
      );
      assert.throws(
        () => barrierKey({ 'x-kapok-saga-gid': 'g', 'x-kapok-saga-branch': 'b' }),
        /x-kapok-saga-op missing or malformed/,
      );
      assert.throws(
        () =>
          barrierKey({
            'x-kapok-saga-gid': "g'; DROP TABLE biz;--",
            'x-kapok-saga-branch': 'b',
            'x-kapok-saga-op': 'action',
          }),
        /x-kapok-saga-gid/,
      );
      assert.throws(
        () =>
          barrierKey({
            'x-kapok-saga-gid': ['a', 'b'],
            'x-kapok-saga-branch': 'b',
            'x-kapok-saga-op': 'action',
          }),
        /x-kapok-saga-gid/,
      );
    });
  });
}
