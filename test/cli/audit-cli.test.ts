import assert from 'node:assert/strict';
import { hostname, userInfo } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createSqliteStore } from '../../src/adapters/sqlite/store.js';
import { kapok, kapokUp } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tmp.js';

/**
 * `kapok audit` (docs/audit.md): commands that change state record their act as cli:user@host; verify
 * exits 0 on an intact chain and 1 naming the first bad seq; an export verifies with the published
 * public key alone.
 */

describe('kapok audit: verify, tail, export, and CLI acts', () => {
  it('records CLI acts, verifies the store and an export, and names tampering', async () => {
    const dir = tmpDir('kapok-audit-cli-');
    const env = {
      KAPOK_DATA_DIR: dir,
      KAPOK_AUDIT__ENABLED: 'true',
      KAPOK_AUDIT__KEK: '00112233445566778899aabbccddeeff',
      KAPOK_GM__KEK: '0f0e0d0c0b0a09080706050403020100',
    };
    const created = await kapok(['keys', 'create', '--name', 'team-x', '--json'], env);
    assert.equal(created.code, 0, created.stderr);
    const revoked = await kapok(['keys', 'revoke', 'no-such-key'], env);
    assert.equal(revoked.code, 1);
    const rotated = await kapok(['device', 'rotate-key', 'token'], env);
    assert.equal(rotated.code, 0, rotated.stderr);

    // kapok up signs a checkpoint (at stop) and publishes the key.
    const up = await kapokUp(env);
    const pk = (await (await fetch(`http://127.0.0.1:${up.port}/api/audit/public-key`)).json()) as {
      keys: Array<{ publicKey: string }>;
    };
    up.child.kill('SIGTERM');
    assert.equal(await up.exited, 0);

    const tail = await kapok(['audit', 'tail', '-n', '10'], env);
    assert.equal(tail.code, 0, tail.stderr);
    const entries = tail.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const me = `cli:${userInfo().username}@${hostname()}`;
    assert.deepEqual(
      entries.map((e) => [e.actor, e.action, e.target, e.outcome]),
      [
        [me, 'gateway.key.create', 'team-x', 'ok'],
        [me, 'gateway.key.revoke', 'no-such-key', 'failed'],
        [me, 'gm.kgc.rotate', 'token', 'ok'],
        ['system', 'kapok.start', 'audit', 'ok'],
        ['system', 'kapok.stop', 'SIGTERM', 'ok'],
      ].map(([a, b, c, d]) => [a, b, c === '' ? null : c, d]),
    );

    const ok = await kapok(['audit', 'verify'], env);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^ok: entries 1\.\.5 \(5\), 1 checkpoints verified/);

    const file = join(dir, 'export.jsonl');
    const exp = await kapok(['audit', 'export', '-o', file], env);
    assert.equal(exp.code, 0, exp.stderr);
    const third = await kapok(
      ['audit', 'verify', '--file', file, '--public-key', pk.keys[0]?.publicKey as string, '--json'],
      {},
    );
    assert.equal(third.code, 0, third.stderr);
    assert.equal(JSON.parse(third.stdout).entries, 5);

    const store = await createSqliteStore({ file: join(dir, 'kapok.db') });
    await store.execute("UPDATE audit_log SET outcome = 'ok' WHERE seq = 2");
    await store.close();
    const bad = await kapok(['audit', 'verify'], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /broken at seq 2 \(edited\).*\[KAPOK_AUDIT_CHAIN_BROKEN\]$/m);
    const badJson = await kapok(['audit', 'verify', '--json', '--from', '3'], env);
    assert.equal(badJson.code, 0, 'from 3 on, the chain is intact (the check starts from entry 2 as stored)');
    const far = await kapok(['audit', 'verify', '--from', '999'], env);
    assert.equal(far.code, 1);
    assert.match(far.stderr, /\[KAPOK_AUDIT_BAD_QUERY\]$/m);
    assert.equal((await kapok(['audit', 'verify', '--from', 'x'], env)).code, 2);
  });
});
