import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, describe, it } from 'node:test';
import { createSqliteStore } from '../../src/adapters/sqlite/store.js';
import { tmpDir } from '../helpers/tmp.js';
import { createBank } from './bank.js';
import { sqliteStore } from './setup.js';

/**
 * Crash recovery with a real process: a coordinator (test/saga/fixtures/coordinator-child.ts) is
 * SIGKILLed at random points while it starts, submits and drives 200 transfer sagas, restarted each
 * time (4 to 13 kills, until a kill leaves at most 40 unfinished, cut mid-flight);
 * after the last restart every transaction reaches a final state within BOUND_MS (below),
 * and the bank's total is unchanged (each saga fully applied or fully compensated, never twice).
 */
const child = new URL('./fixtures/coordinator-child.ts', import.meta.url).pathname;
const tsx = import.meta.resolve('tsx');
const N = 200;
/**
 * The bound: the retry interval (retry.maxMs, 0.5 s in the child) + 5 s after the last
 * restart. The restarted coordinator has the same owner (as kapok up on one dataDir): it takes its
 * leases back at once rather than waiting saga.leaseMs, and each branch call is one Store write.
 */
const BOUND_MS = 500 + 5000;

async function until(ok: () => Promise<boolean>, ms = 300_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) assert.fail('the coordinator made no progress');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('saga: crash recovery', () => {
  const dir = tmpDir('kapok-saga-crash-');
  const procs: ChildProcess[] = [];
  after(() => {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  });

  it(`SIGKILL at random points over ${N} transactions: all final within the retry interval + 5 s after the last restart, total unchanged`, async () => {
    const bankStore = await sqliteStore();
    const bank = await createBank(bankStore, { a: 10_000, b: 10_000, c: 10_000, d: 10_000 });
    bank.fault('in-x/action', { kind: 'refuse' });
    // Slow branches a little so kills land mid-call too.
    bank.fault('out/action', { kind: 'delay', ms: 3 });
    const file = `${dir}/coordinator.db`;
    const startChild = () => {
      const p = spawn(process.execPath, ['--import', tsx, child, file, bank.url, String(N)], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      procs.push(p);
      let err = '';
      p.stderr?.on('data', (d) => {
        err += d;
      });
      const ready = new Promise<void>((resolve, reject) => {
        p.stdout?.on('data', (d) => String(d).includes('ready') && resolve());
        p.once('exit', (code) => reject(new Error(`child exited ${code}: ${err.slice(-500)}`)));
      });
      return { p, ready };
    };
    let kills = 0;
    const open = async () => {
      const st = await createSqliteStore({ file });
      try {
        const [r] = await st.query<{ n: number }>(
          "SELECT COUNT(*) AS n FROM saga_tx WHERE state NOT IN ('succeeded', 'aborted')",
        );
        return Number(r?.n);
      } catch {
        return N; // not even migrated yet
      } finally {
        await st.close();
      }
    };
    // Kill at random points: during start and submission, then while it drives; until a kill finds
    // at most a few dozen left (so the last restart recovers transactions cut mid-flight).
    for (let round = 0; round < 12; round++) {
      const { p, ready } = startChild();
      if (round % 3 === 0) ready.catch(() => {});
      else await ready;
      await new Promise((r) =>
        setTimeout(r, round % 3 === 0 ? 200 + Math.random() * 800 : 500 + Math.random() * 2500),
      );
      p.kill('SIGKILL');
      await once(p, 'exit');
      kills++;
      const left = await open();
      if (round >= 3 && left > 0 && left <= 40) break;
    }
    if ((await open()) > 40) {
      // A slow (shared) host may not have got there in 12 rounds: one more run, killed as soon as
      // at most 40 are left, so the last restart recovers transactions cut mid-flight, not a backlog.
      const { p, ready } = startChild();
      await ready;
      await until(async () => (await open()) <= 40);
      p.kill('SIGKILL');
      await once(p, 'exit');
      kills++;
    }
    const { p, ready } = startChild();
    await ready;
    const restartedAt = Date.now();
    const store = await createSqliteStore({ file });
    try {
      let left = N;
      while (Date.now() - restartedAt < BOUND_MS) {
        const [r] = await store.query<{ n: number }>(
          "SELECT COUNT(*) AS n FROM saga_tx WHERE state NOT IN ('succeeded', 'aborted')",
        );
        left = Number(r?.n);
        if (left === 0) break;
        await new Promise((res) => setTimeout(res, 50));
      }
      const took = Date.now() - restartedAt;
      console.log('took', took);
      if (left)
        console.log(
          await store.query(
            "SELECT t.gid, t.state, t.next_at - ? AS due_in, t.lease_until - ? AS lease_in, t.lease_owner, o.branch, o.op, o.state AS ostate, o.attempts, o.next_at - ? AS odue, o.last_error FROM saga_tx t JOIN saga_op o ON o.gid = t.gid WHERE t.state NOT IN ('succeeded','aborted') LIMIT 12",
            [Date.now(), Date.now(), Date.now()],
          ),
        );
      assert.equal(left, 0, `${left} transactions not final ${took} ms after the last restart`);
      const states = await store.query<{ state: string; n: number }>(
        'SELECT state, COUNT(*) AS n FROM saga_tx GROUP BY state ORDER BY state',
      );
      const by = Object.fromEntries(states.map((s) => [s.state, Number(s.n)]));
      assert.equal(by.aborted, N / 5, 'the refused fifth compensated');
      assert.equal(by.succeeded, N - N / 5);
      assert.equal(await bank.total(), 40_000, 'total balance unchanged');
      const executedTwice =
        bank.calls.filter((c) => c.outcome === 'executed').length -
        new Set(bank.calls.filter((c) => c.outcome === 'executed').map((c) => `${c.gid}/${c.branch}/${c.op}`))
          .size;
      assert.equal(executedTwice, 0, 'no operation applied twice');
      assert.ok(kills >= 4, `${kills} kills`);
    } finally {
      p.kill('SIGKILL');
      await store.close();
      await bank.close();
      await bankStore.close();
    }
  });
});
