import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { createSqliteStore } from '../../src/adapters/sqlite/store.js';
import { canonicalJson } from '../../src/audit/canonical.js';
import { CHECKPOINT_SM2_ID, chainHash, checkpointMessage, GENESIS_HASH } from '../../src/audit/chain.js';
import { exportLines, verifyExport } from '../../src/audit/export.js';
import { loadOrCreateSigningKey } from '../../src/audit/keys.js';
import { verifyStore } from '../../src/audit/reader.js';
import { isKapokError } from '../../src/core/errors.js';
import { toHex } from '../../src/crypto/bytes.js';
import { sm2GenerateKeyPair, sm2Sign } from '../../src/crypto/sm2.js';
import { tmpDir } from '../helpers/tmp.js';
import { filledStore, openLog } from './setup.js';

/**
 * The chain (docs/audit.md#the-chain): hashes recomputed independently (node's OpenSSL SM3,
 * GB/T 32905), tampering through SQL named by the verifier with the first bad seq and its kind.
 */

describe('audit chain: hashing', () => {
  it('canonical JSON sorts keys, has no whitespace, and rejects what has no canonical form', () => {
    assert.equal(
      canonicalJson({ b: 1, a: 'é"\n', c: null, d: { z: 2, y: 'x' } }),
      '{"a":"é\\"\\n","b":1,"c":null,"d":{"y":"x","z":2}}',
    );
    assert.throws(
      () => canonicalJson({ a: 1.5 }),
      (e) => isKapokError(e, 'KAPOK_AUDIT_INVALID_RECORD'),
    );
    assert.throws(
      () => canonicalJson([1]),
      (e) => isKapokError(e, 'KAPOK_AUDIT_INVALID_RECORD'),
    );
  });

  it('entry 1 hashes as SM3(32 zero bytes ‖ canonical JSON), the stored hash and an independent one agree', async () => {
    const store = await filledStore(3);
    const [row] = await store.query<Record<string, unknown>>('SELECT * FROM audit_log WHERE seq = 1');
    const body = `{"action":"gateway.key.create","actor":"admin-0","ip":"127.0.0.1","outcome":"ok","requestId":null,"seq":1,"target":"k0","time":${Number(row?.time)}}`;
    const independent = createHash('sm3').update(Buffer.alloc(32)).update(body, 'utf8').digest('hex');
    assert.equal(row?.hash, independent);
    assert.equal(
      chainHash(GENESIS_HASH, {
        seq: 1,
        time: Number(row?.time),
        actor: 'admin-0',
        ip: '127.0.0.1',
        action: 'gateway.key.create',
        target: 'k0',
        outcome: 'ok',
        requestId: null,
      }),
      independent,
    );
    await store.close();
  });
});

describe('audit chain: the worked example of docs/audit.md', () => {
  it('gives the canonical JSON and hashes printed there', () => {
    const e1 = {
      seq: 1,
      time: 1767225600000,
      actor: 'ops-alice',
      ip: '10.0.0.7',
      action: 'gateway.key.create',
      target: 'team-a',
      outcome: 'ok',
      requestId: 'req-1',
    };
    const e2 = {
      ...e1,
      seq: 2,
      time: 1767225601000,
      action: 'admin.auth.denied',
      actor: 'unauthenticated',
      target: 'gateway:gateway.key.revoke',
      outcome: 'denied',
      requestId: 'req-2',
    };
    const doc = readFileSync(new URL('../../docs/audit.md', import.meta.url), 'utf8');
    assert.ok(doc.includes(`entry 1:  ${canonicalJson(e1)}`));
    assert.ok(doc.includes(`entry 2:  ${canonicalJson(e2)}`));
    const h1 = createHash('sm3').update(Buffer.alloc(32)).update(canonicalJson(e1)).digest('hex');
    const h2 = createHash('sm3').update(Buffer.from(h1, 'hex')).update(canonicalJson(e2)).digest('hex');
    assert.equal(chainHash(GENESIS_HASH, e1), h1);
    assert.equal(chainHash(h1, e2), h2);
    assert.ok(doc.includes(`hash(1) = SM3(00×32 ‖ that) = ${h1}`));
    assert.ok(doc.includes(`hash(2) = SM3(hash(1) ‖ that) = ${h2}`));
  });
});

describe('audit chain: appends and verification on SQLite', () => {
  it('2,500 concurrent records get seqs 1..2500 without gaps, checkpoints every 1,000, and verify', async () => {
    const store = await filledStore(2500);
    const [{ n, max } = { n: 0, max: 0 }] = await store.query<{ n: number; max: number }>(
      'SELECT COUNT(*) AS n, MAX(seq) AS max FROM audit_log',
    );
    assert.equal(Number(n), 2500);
    assert.equal(Number(max), 2500);
    const cps = await store.query<{ seq: number }>('SELECT seq FROM audit_checkpoints ORDER BY seq');
    assert.ok(cps.length >= 3, `checkpoints: ${cps.map((c) => c.seq)}`);
    assert.equal(Number(cps.at(-1)?.seq), 2500, 'close() signs the head');
    const v = await verifyStore(store);
    assert.equal(v.ok, true, JSON.stringify(v.problem));
    assert.equal(v.entries, 2500);
    assert.equal(v.checkpoints, cps.length);
    assert.equal(v.unsigned, 0);
    const from = await verifyStore(store, 1200);
    assert.equal(from.ok, true);
    assert.equal(from.entries, 1301);
    await store.close();
  });

  const tamper = async (sql: string[], kind: string, seq: number) => {
    const store = await filledStore(2500);
    for (const s of sql) await store.execute(s);
    const v = await verifyStore(store);
    await store.close();
    assert.equal(v.ok, false);
    assert.equal(v.problem?.kind, kind, v.problem?.message);
    assert.equal(v.problem?.seq, seq, v.problem?.message);
    return v;
  };

  it('an edited entry (UPDATE) is named with its seq', async () => {
    await tamper(["UPDATE audit_log SET actor = 'someone-else' WHERE seq = 10"], 'edited', 10);
  });

  it('an edited entry whose hash was recomputed still breaks the next link', async () => {
    const store = await filledStore(50);
    const [r9] = await store.query<{ hash: string }>('SELECT hash FROM audit_log WHERE seq = 9');
    const [r10] = await store.query<Record<string, unknown>>('SELECT * FROM audit_log WHERE seq = 10');
    const forged = chainHash(r9?.hash as string, {
      seq: 10,
      time: Number(r10?.time),
      actor: 'x',
      ip: '127.0.0.1',
      action: 'gateway.key.create',
      target: 'k9',
      outcome: 'ok',
      requestId: null,
    });
    await store.execute("UPDATE audit_log SET actor = 'x', hash = ? WHERE seq = 10", [forged]);
    const v = await verifyStore(store);
    await store.close();
    assert.equal(v.problem?.kind, 'edited');
    assert.equal(v.problem?.seq, 11);
  });

  it('a chain rewritten from an entry on, every hash recomputed, contradicts the signed checkpoint', async () => {
    const store = await filledStore(1500);
    await store.execute("UPDATE audit_log SET target = 'hidden' WHERE seq = 5");
    const rows = await store.query<Record<string, unknown>>(
      'SELECT * FROM audit_log WHERE seq >= 5 ORDER BY seq',
    );
    let [prev] = await store.query<{ hash: string }>('SELECT hash FROM audit_log WHERE seq = 4');
    let h = prev?.hash as string;
    for (const r of rows) {
      h = chainHash(h, {
        seq: Number(r.seq),
        time: Number(r.time),
        actor: r.actor as string,
        ip: r.ip as string,
        action: r.action as string,
        target: r.target as string,
        outcome: r.outcome as string,
        requestId: null,
      });
      await store.execute('UPDATE audit_log SET hash = ? WHERE seq = ?', [h, Number(r.seq)]);
    }
    await store.execute('UPDATE audit_head SET hash = ? WHERE id = 1', [h]);
    prev = undefined;
    const v = await verifyStore(store);
    await store.close();
    assert.equal(v.problem?.kind, 'checkpoint-mismatch', v.problem?.message);
    assert.ok((v.problem?.seq ?? 0) >= 1000, v.problem?.message);
  });

  it('a deleted entry (DELETE) is a gap named at its seq', async () => {
    const v = await tamper(['DELETE FROM audit_log WHERE seq = 20'], 'deleted', 20);
    assert.match(v.problem?.message ?? '', /missing \(deleted\)/);
  });

  it('two entries whose seqs were swapped are named reordered', async () => {
    await tamper(
      [
        'UPDATE audit_log SET seq = -1 WHERE seq = 30',
        'UPDATE audit_log SET seq = 30 WHERE seq = 31',
        'UPDATE audit_log SET seq = 31 WHERE seq = -1',
      ],
      'reordered',
      30,
    );
  });

  it('a log truncated behind its last checkpoint is named truncated', async () => {
    const v = await tamper(['DELETE FROM audit_log WHERE seq > 2200'], 'truncated', 2201);
    assert.match(v.problem?.message ?? '', /checkpoint 2500/);
  });

  it('a tail removed together with its checkpoints still shows against the head row', async () => {
    await tamper(
      ['DELETE FROM audit_log WHERE seq > 2450', 'DELETE FROM audit_checkpoints WHERE seq > 2450'],
      'truncated',
      2451,
    );
  });

  it('a checkpoint with a forged signature is named', async () => {
    const other = sm2GenerateKeyPair();
    const store = await filledStore(2500);
    const [cp] = await store.query<{ seq: number; head_hash: string; time: number; key_id: string }>(
      'SELECT * FROM audit_checkpoints ORDER BY seq LIMIT 1',
    );
    const msg = checkpointMessage({
      seq: Number(cp?.seq),
      headHash: cp?.head_hash as string,
      time: Number(cp?.time),
      keyId: cp?.key_id as string,
    });
    const forged = toHex(sm2Sign(other.privateKey, msg, { id: CHECKPOINT_SM2_ID }));
    await store.execute('UPDATE audit_checkpoints SET signature = ? WHERE seq = ?', [
      forged,
      Number(cp?.seq),
    ]);
    const v = await verifyStore(store);
    await store.close();
    assert.equal(v.problem?.kind, 'checkpoint-signature');
    assert.equal(v.problem?.seq, Number(cp?.seq));
  });

  it('a checkpoint moved to another head hash (signature kept) is named', async () => {
    const v = await tamper(
      [
        'UPDATE audit_checkpoints SET head_hash = (SELECT hash FROM audit_log WHERE seq = 5) WHERE seq = 2500',
      ],
      'checkpoint-signature',
      2500,
    );
    assert.match(v.problem?.message ?? '', /does not verify/);
  });

  it('refuses malformed records and records after close', async () => {
    const store = await createSqliteStore({ file: `${tmpDir('kapok-audit-')}/a.db` });
    const log = await openLog(store);
    await assert.rejects(log.record({ actor: 'a', action: 'NotDotted', outcome: 'ok' }), (e) =>
      isKapokError(e, 'KAPOK_AUDIT_INVALID_RECORD'),
    );
    await assert.rejects(log.record({ actor: '', action: 'a.b', outcome: 'ok' }), (e) =>
      isKapokError(e, 'KAPOK_AUDIT_INVALID_RECORD'),
    );
    await assert.rejects(log.record({ actor: 'a', action: 'a.b', outcome: 'maybe' as 'ok' }), (e) =>
      isKapokError(e, 'KAPOK_AUDIT_INVALID_RECORD'),
    );
    await log.record({ actor: 'a', action: 'a.b', outcome: 'ok' });
    await log.close();
    await assert.rejects(log.record({ actor: 'a', action: 'a.b', outcome: 'ok' }), (e) =>
      isKapokError(e, 'KAPOK_AUDIT_CLOSED'),
    );
    const other = Uint8Array.from(Buffer.from('ffeeddccbbaa99887766554433221100', 'hex'));
    await assert.rejects(loadOrCreateSigningKey(store, other), (e) =>
      isKapokError(e, 'KAPOK_AUDIT_KEK_MISMATCH'),
    );
    await store.close();
  });
});

describe('audit export: verification by a third party', () => {
  const linesOf = async (store: Awaited<ReturnType<typeof filledStore>>) => {
    const out: string[] = [];
    for await (const l of exportLines(store)) out.push(l);
    return out;
  };

  it('an export verifies with the published public key alone, and not with another key', async () => {
    const store = await filledStore(1200, 500);
    const lines = await linesOf(store);
    const header = JSON.parse(lines[0] as string);
    await store.close();
    assert.equal(lines.filter((l) => l.includes('"type":"entry"')).length, 1200);
    const pub = Object.values(header.publicKeys)[0] as string;
    const v = await verifyExport(lines, pub);
    assert.equal(v.ok, true, JSON.stringify(v.problem));
    assert.equal(v.entries, 1200);
    const wrong = await verifyExport(lines, toHex(sm2GenerateKeyPair().publicKey));
    assert.equal(wrong.problem?.kind, 'checkpoint-signature');
  });

  it('an edited export line is named; a file without a header is refused', async () => {
    const store = await filledStore(30, 10);
    const lines = await linesOf(store);
    await store.close();
    const i = lines.findIndex((l) => l.includes('"seq":7,'));
    lines[i] = (lines[i] as string).replace('"outcome":"ok"', '"outcome":"failed"');
    const v = await verifyExport(lines);
    assert.equal(v.problem?.kind, 'edited');
    assert.equal(v.problem?.seq, 7);
    await assert.rejects(verifyExport(lines.slice(1)), (e) => isKapokError(e, 'KAPOK_AUDIT_EXPORT_INVALID'));
    await assert.rejects(verifyExport([lines[0] as string, '{not json']), (e) =>
      isKapokError(e, 'KAPOK_AUDIT_EXPORT_INVALID'),
    );
  });
});
