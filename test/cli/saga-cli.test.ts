import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createSqliteStore } from '../../src/adapters/sqlite/store.js';
import { kapok } from '../helpers/cli.js';
import { tmpDir, tmpFile } from '../helpers/tmp.js';
import { createBank } from '../saga/bank.js';
import { rig, sagaConfig, sqliteStore } from '../saga/setup.js';

/**
 * `kapok saga …` on the Store a coordinator uses: a dead transaction is listed (--state dead, and
 * retrying ones), shown, retried and finished by the coordinator; skip and compensate; unknown gids
 * and wrong states exit 1 with the catalogue code.
 */
describe('kapok saga', () => {
  it('lists, shows, retries, skips and compensates; refuses unknown gids and wrong states', async () => {
    const dir = tmpDir('kapok-saga-cli-');
    const store = await createSqliteStore({ file: `${dir}/kapok.db` });
    const bank = await createBank(await sqliteStore(), { a: 100, b: 100 });
    const r = await rig(
      store,
      sagaConfig({
        retry: { baseMs: 20, maxMs: 50, maxAttempts: 2 },
        targets: [{ name: 'bank', url: bank.url, timeoutMs: 1000 }],
      }),
    );
    const cfg = tmpFile('kapok.yaml', `dataDir: ${dir}\nsaga: { enabled: true }\n`);
    const run = (...args: string[]) => kapok(['saga', ...args, '--config', cfg]);
    try {
      bank.fault('in/action', { kind: 'refuse' });
      bank.fault('out/compensate', { kind: 'fail', times: 1_000_000 });
      const body = (gid: string) => ({
        gid,
        mode: 'saga',
        branches: [
          {
            id: 'out',
            action: `${bank.url}a/debit`,
            compensate: `${bank.url}a/undo-debit`,
            payload: { amount: 5 },
          },
          { id: 'in', action: `${bank.url}b/credit`, payload: { amount: 5 } },
        ],
      });
      await r.submit(body('cli-1'));
      await r.submit(body('cli-2'));
      assert.equal((await r.coordinator.settled('cli-1', 5000))?.state, 'dead');
      assert.equal((await r.coordinator.settled('cli-2', 5000))?.state, 'dead');

      const list = await run('list', '--state', 'dead', '--json');
      assert.equal(list.code, 0, list.stderr);
      assert.deepEqual(
        JSON.parse(list.stdout)
          .transactions.map((t: { gid: string }) => t.gid)
          .sort(),
        ['cli-1', 'cli-2'],
      );
      const human = await run('list');
      assert.match(human.stdout, /^GID\s+MODE\s+STATE/);
      assert.match(human.stdout, /cli-1\s+saga\s+dead/);

      const show = await run('show', 'cli-1');
      assert.equal(show.code, 0, show.stderr);
      assert.match(show.stdout, /out\s+compensate\s+dead\s+2\s+KAPOK_SAGA_BRANCH_UNAVAILABLE/);
      assert.match(show.stdout, /dead letters:\n {2}out\/compensate open/);
      const letters = await run('dead-letters', '--json');
      assert.equal(JSON.parse(letters.stdout).deadLetters.length, 2);

      bank.faults.delete('out/compensate');
      const retry = await run('retry', 'cli-1', '--json');
      assert.equal(retry.code, 0, retry.stderr);
      assert.equal(JSON.parse(retry.stdout).state, 'compensating');
      assert.equal(
        (await r.coordinator.settled('cli-1', 5000))?.state,
        'aborted',
        'the running coordinator finished it',
      );
      assert.equal(await bank.balance('a'), 95, 'cli-2 still holds its debit');

      const skip = await run('skip', 'cli-2', '--branch', 'out', '--op', 'compensate', '--json');
      assert.equal(skip.code, 0, skip.stderr);
      assert.equal((await r.coordinator.settled('cli-2', 5000))?.state, 'aborted');

      const again = await run('retry', 'cli-1');
      assert.equal(again.code, 1);
      assert.match(
        again.stderr,
        /transaction cli-1 is aborted: only a dead \(or active\) transaction's dead operations can be retried \[KAPOK_SAGA_STATE\]/,
      );
      const unknown = await run('show', 'nope');
      assert.equal(unknown.code, 1);
      assert.match(
        unknown.stderr,
        /no transaction nope: check the gid \(kapok saga list\) \[KAPOK_SAGA_NOT_FOUND\]/,
      );
      const badState = await run('list', '--state', 'weird');
      assert.equal(badState.code, 1);
      assert.match(badState.stderr, /\[KAPOK_SAGA_INVALID\]/);

      // A finished saga can be undone by a person: both debits compensated.
      bank.faults.clear();
      await r.submit({ ...body('cli-3'), branches: [body('cli-3').branches[0]] });
      assert.equal((await r.coordinator.settled('cli-3', 5000))?.state, 'succeeded');
      const comp = await run('compensate', 'cli-3', '--json');
      assert.equal(comp.code, 0, comp.stderr);
      assert.equal((await r.coordinator.settled('cli-3', 5000))?.state, 'aborted');
      // cli-3's debit is back; cli-2's was skipped (a person was to return it by hand).
      assert.equal(await bank.balance('a'), 95);
    } finally {
      await r.close();
      await bank.close();
      await store.close();
    }
  });
});
