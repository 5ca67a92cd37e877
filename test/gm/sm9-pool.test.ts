import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { isKapokError } from '../../src/core/errors.js';
import { Sm9SignMasterKey, sm9Sign, sm9Verify } from '../../src/crypto/sm9/index.js';
import { createSm9VerifyPool, type VerifyJob } from '../../src/crypto/sm9/pool.js';

describe('SM9 verification pool', () => {
  const pool = createSm9VerifyPool({ size: 2, maxPending: 50 });
  after(() => pool.close());
  const master = Sm9SignMasterKey.generate();
  const masterPublicKey = master.publicKey.toBytes();
  const jobs: VerifyJob[] = [];
  for (let i = 0; i < 8; i++) {
    const id = `dev-${i}`;
    const message = `challenge ${i}`;
    const signature = sm9Sign(master.publicKey, master.extract(id), message);
    // Every other job is wrong (another ID), so the pool must not just answer true.
    jobs.push({ masterPublicKey, id: i % 2 ? `${id}-x` : id, message, signature });
  }

  it('answers exactly as sm9Verify does, singly and in batches', async () => {
    const expected = jobs.map((j) => sm9Verify(master.publicKey, j.id, j.message, j.signature));
    assert.deepEqual(expected, [true, false, true, false, true, false, true, false]);
    assert.deepEqual(await pool.verifyMany(jobs), expected);
    assert.deepEqual(await Promise.all(jobs.map((j) => pool.verify(j))), expected);
    assert.equal(pool.pending, 0);
  });

  it('answers false for a garbage master key or signature, and refuses past maxPending', async () => {
    const j = jobs[0] as VerifyJob;
    assert.equal(await pool.verify({ ...j, masterPublicKey: new Uint8Array(129) }), false);
    assert.equal(await pool.verify({ ...j, signature: Uint8Array.of(0x30, 0) }), false);
    await assert.rejects(pool.verifyMany(Array.from({ length: 51 }, () => j)), (e: unknown) =>
      isKapokError(e, 'KAPOK_GM_POOL_BUSY'),
    );
  });

  it('refuses work after close', async () => {
    const p = createSm9VerifyPool({ size: 1 });
    await p.close();
    await assert.rejects(p.verify(jobs[0] as VerifyJob), (e: unknown) =>
      isKapokError(e, 'KAPOK_GM_POOL_CLOSED'),
    );
    assert.throws(() => createSm9VerifyPool({ size: 0 }), /pool size/);
  });
});
